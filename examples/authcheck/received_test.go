package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// receivedCases are Received fields as each MTA writes them, with what a
// header analyzer must read from them. The fields follow the MTAs'
// formats (Postfix smtpd_received.c, Exim's received_header_text,
// sendmail's default HReceived, Gmail's and Microsoft 365's headers as
// delivered, maddy on go-smtp, this module's relay); 003 and 006 of the
// stalwart-mail-auth data (real mails) are quoted as they are.
var receivedCases = []struct {
	name, field string
	want        hop
}{
	{"postfix", "from mail.example.com (mail.example.com [192.0.2.1])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\t(No client certificate requested)\r\n\tby mx.example.net (Postfix) with ESMTPS id 4Q1a2b3c4d\r\n\tfor <bob@example.net>; Thu,  3 Dec 2026 09:15:04 +0000 (UTC)",
		hop{From: "mail.example.com", HELO: "mail.example.com", RDNS: "mail.example.com", IP: ip("192.0.2.1"), By: "mx.example.net", With: "ESMTPS", ID: "4Q1a2b3c4d", For: "bob@example.net", Date: date("2026-12-03T09:15:04Z")}},
	{"postfix unknown client", "from helo.example (unknown [192.0.2.9]) by mx.example.net (Postfix) with ESMTP id 4QAAAA; Thu, 3 Dec 2026 09:15:04 +0100",
		hop{From: "helo.example", HELO: "helo.example", IP: ip("192.0.2.9"), By: "mx.example.net", With: "ESMTP", ID: "4QAAAA", Date: date("2026-12-03T08:15:04Z")}},
	{"postfix ipv6 (stalwart 003)", "from ietfa.amsl.com (localhost [IPv6:::1])\n\tby ietfa.amsl.com (Postfix) with ESMTP id 5E112C1522AC;\n\tFri,  4 Nov 2022 13:02:25 -0700 (PDT)",
		hop{From: "ietfa.amsl.com", HELO: "ietfa.amsl.com", RDNS: "localhost", IP: ip("::1"), By: "ietfa.amsl.com", With: "ESMTP", ID: "5E112C1522AC", Date: date("2022-11-04T20:02:25Z")}},
	{"amavis (stalwart 003)", "from mail.ietf.org ([50.223.129.194])\n by localhost (ietfa.amsl.com [127.0.0.1]) (amavisd-new, port 10024)\n with ESMTP id TPvKqVQ91cB6 for <emailcore@ietfa.amsl.com>;\n Fri,  4 Nov 2022 13:02:23 -0700 (PDT)",
		hop{From: "mail.ietf.org", HELO: "mail.ietf.org", IP: ip("50.223.129.194"), By: "localhost", With: "ESMTP", ID: "TPvKqVQ91cB6", For: "emailcore@ietfa.amsl.com", Date: date("2022-11-04T20:02:23Z")}},
	{"exim without a name (stalwart 003)", "from [198.252.137.10] (helo=PSB)\n by bsa2.jck.com with esmtp (Exim 4.82 (FreeBSD))\n (envelope-from <john-ietf@jck.com>) id 1or2tR-000LNT-Uq\n for emailcore@ietf.org; Fri, 04 Nov 2022 16:02:21 -0400",
		hop{From: "[198.252.137.10]", HELO: "PSB", IP: ip("198.252.137.10"), By: "bsa2.jck.com", With: "esmtp", ID: "1or2tR-000LNT-Uq", For: "emailcore@ietf.org", EnvelopeFrom: "john-ietf@jck.com", Date: date("2022-11-04T20:02:21Z")}},
	{"exim with a name and port", "from rdns.example.org ([192.0.2.44]:53124 helo=helo.example.org)\n\tby mx.example.net with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n\t(Exim 4.96)\n\t(envelope-from <>)\n\tid 1tAbCd-000123-4E\n\tfor bob@example.net;\n\tThu, 03 Dec 2026 09:15:04 +0000",
		hop{From: "rdns.example.org", HELO: "helo.example.org", RDNS: "rdns.example.org", IP: ip("192.0.2.44"), By: "mx.example.net", With: "esmtps", ID: "1tAbCd-000123-4E", For: "bob@example.net", Date: date("2026-12-03T09:15:04Z")}},
	{"exim ipv6", "from mail.example.org ([2001:db8::25] helo=mail.example.org) by mx.example.net with esmtp (Exim 4.96) id 1tAbCd-000123-4F; Thu, 03 Dec 2026 09:15:04 +0000",
		hop{From: "mail.example.org", HELO: "mail.example.org", RDNS: "mail.example.org", IP: ip("2001:db8::25"), By: "mx.example.net", With: "esmtp", ID: "1tAbCd-000123-4F", Date: date("2026-12-03T09:15:04Z")}},
	{"gmail", "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\r\n        by mx.google.com with SMTPS id a640c23a62f3a-a44c9d0a7d4sor1234567ejc.3.2026.12.03.01.15.02\r\n        for <bob@gmail.com>\r\n        (Google Transport Security);\r\n        Thu, 03 Dec 2026 01:15:02 -0800 (PST)",
		hop{From: "mail-sor-f41.google.com", HELO: "mail-sor-f41.google.com", RDNS: "mail-sor-f41.google.com", IP: ip("209.85.220.41"), By: "mx.google.com", With: "SMTPS", ID: "a640c23a62f3a-a44c9d0a7d4sor1234567ejc.3.2026.12.03.01.15.02", For: "bob@gmail.com", Date: date("2026-12-03T09:15:02Z")}},
	{"gmail ipv6", "from mail.example.com (mail.example.com. [2001:db8:1::2])\r\n        by mx.google.com with ESMTPS id x1si123.2026.12.03.01.15.02\r\n        for <bob@gmail.com>\r\n        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\r\n        Thu, 03 Dec 2026 01:15:02 -0800 (PST)",
		hop{From: "mail.example.com", HELO: "mail.example.com", RDNS: "mail.example.com", IP: ip("2001:db8:1::2"), By: "mx.google.com", With: "ESMTPS", ID: "x1si123.2026.12.03.01.15.02", For: "bob@gmail.com", Date: date("2026-12-03T09:15:02Z")}},
	{"microsoft 365 inbound", "from mail.example.com (192.0.2.1) by AM4PEPF00027A5F.mail.protection.outlook.com (10.167.16.71) with Microsoft SMTP Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7386.12 via Frontend Transport; Thu, 3 Dec 2026 09:15:01 +0000",
		hop{From: "mail.example.com", HELO: "mail.example.com", IP: ip("192.0.2.1"), By: "AM4PEPF00027A5F.mail.protection.outlook.com", Via: "Frontend", With: "Microsoft", ID: "15.20.7386.12", Date: date("2026-12-03T09:15:01Z")}},
	{"microsoft 365 internal", "from AM0PR02MB5555.eurprd02.prod.outlook.com\r\n (2603:10a6:208:11b::10) by DB8PR02MB5530.eurprd02.prod.outlook.com\r\n (2603:10a6:10:e8::21) with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7386.30; Thu, 3 Dec 2026\r\n 09:15:00 +0000",
		hop{From: "AM0PR02MB5555.eurprd02.prod.outlook.com", HELO: "AM0PR02MB5555.eurprd02.prod.outlook.com", IP: ip("2603:10a6:208:11b::10"), By: "DB8PR02MB5530.eurprd02.prod.outlook.com", With: "Microsoft", ID: "15.20.7386.30", Date: date("2026-12-03T09:15:00Z")}},
	{"sendmail", "from mail.example.com (mail.example.com [192.0.2.1])\n\tby mx.example.net (8.17.1/8.17.1) with ESMTPS id 4B39F2xx012345\n\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT)\n\tfor <bob@example.net>; Thu, 3 Dec 2026 09:15:02 GMT",
		hop{From: "mail.example.com", HELO: "mail.example.com", RDNS: "mail.example.com", IP: ip("192.0.2.1"), By: "mx.example.net", With: "ESMTPS", ID: "4B39F2xx012345", For: "bob@example.net", Date: date("2026-12-03T09:15:02Z")}},
	{"sendmail may be forged, ident", "from helo.example (user@rdns.example [192.0.2.5] (may be forged))\n\tby mx.example.net (8.17.1/8.17.1) with ESMTP id 4B39F2yy; Thu, 3 Dec 2026 09:15:02 -0500",
		hop{From: "helo.example", HELO: "helo.example", RDNS: "rdns.example", IP: ip("192.0.2.5"), By: "mx.example.net", With: "ESMTP", ID: "4B39F2yy", Date: date("2026-12-03T14:15:02Z")}},
	{"sendmail unresolved", "from helo.example ([192.0.2.6]) by mx.example.net (8.17.1/8.17.1) with SMTP id 4B39F2zz; Thu, 3 Dec 2026 09:15:02 +0000",
		hop{From: "helo.example", HELO: "helo.example", IP: ip("192.0.2.6"), By: "mx.example.net", With: "SMTP", ID: "4B39F2zz", Date: date("2026-12-03T09:15:02Z")}},
	{"maddy (go-smtp)", "from helo.example (rdns.example [192.0.2.7]) by mx.example.net (envelope-sender <alice@example.com>) with ESMTPS id 0123abcd for bob@example.net; Thu, 03 Dec 2026 09:15:02 +0000",
		hop{From: "helo.example", HELO: "helo.example", RDNS: "rdns.example", IP: ip("192.0.2.7"), By: "mx.example.net", With: "ESMTPS", ID: "0123abcd", For: "bob@example.net", EnvelopeFrom: "alice@example.com", Date: date("2026-12-03T09:15:02Z")}},
	{"relay (go-smtp)", "from app.example.com ([192.0.2.8])\r\n\t(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)\r\n\t key-exchange X25519)\r\n\t(No client certificate requested)\r\n\t(Authenticated sender: shop)\r\n\tby relay.provider.example with ESMTPSA id k3j2h1\r\n\tfor <bob@example.net>;\r\n\tThu, 03 Dec 2026 09:15:01 +0000",
		hop{From: "app.example.com", HELO: "app.example.com", IP: ip("192.0.2.8"), By: "relay.provider.example", With: "ESMTPSA", ID: "k3j2h1", For: "bob@example.net", Date: date("2026-12-03T09:15:01Z")}},
	{"relay, a HELO that is no name", "from [IPv6:2001:db8::8] ([IPv6:2001:db8::8])\r\n\t(helo=my laptop)\r\n\tby relay.provider.example with ESMTP id k3j2h2; Thu, 03 Dec 2026 09:15:01 +0000",
		hop{From: "[IPv6:2001:db8::8]", HELO: "my laptop", IP: ip("2001:db8::8"), By: "relay.provider.example", With: "ESMTP", ID: "k3j2h2", Date: date("2026-12-03T09:15:01Z")}},
	{"github (stalwart 006)", "from [10.34.27.159] (10.34.140.5) by mail01.resources.github.com id hcatd42tlo8p for <mauro@stalw.art>; Wed, 2 Nov 2022 14:45:38 -0400 (envelope-from <bounce@resources.github.com>)",
		hop{From: "[10.34.27.159]", HELO: "[10.34.27.159]", IP: ip("10.34.140.5"), By: "mail01.resources.github.com", ID: "hcatd42tlo8p", For: "mauro@stalw.art", Date: date("2022-11-02T18:45:38Z")}},
	{"local, no from clause", "by mailstore.example.net (Dovecot) with LMTP id x9y8z7 for <bob@example.net>; Thu, 03 Dec 2026 09:15:05 +0000",
		hop{By: "mailstore.example.net", With: "LMTP", ID: "x9y8z7", For: "bob@example.net", Date: date("2026-12-03T09:15:05Z")}},
	{"no date", "from a.example (a.example [192.0.2.1]) by b.example with SMTP",
		hop{From: "a.example", HELO: "a.example", RDNS: "a.example", IP: ip("192.0.2.1"), By: "b.example", With: "SMTP", DateErr: "no date"}},
	{"bad date", "from a.example (a.example [192.0.2.1]) by b.example; yesterday at noon",
		hop{From: "a.example", HELO: "a.example", RDNS: "a.example", IP: ip("192.0.2.1"), By: "b.example", DateErr: `unreadable date "yesterday at noon"`}},
	{"unclosed comment", "from a.example (a.example [192.0.2.1] by b.example; Thu, 03 Dec 2026 09:15:05 +0000",
		hop{From: "a.example", HELO: "a.example", RDNS: "a.example", IP: ip("192.0.2.1"), DateErr: "no date"}},
	{"bad literal", "from a.example (a.example [192.0.2.300]) by b.example; Thu, 03 Dec 2026 09:15:05 +0000",
		hop{From: "a.example", HELO: "a.example", By: "b.example", Date: date("2026-12-03T09:15:05Z")}},
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseReceived(t *testing.T) {
	t.Parallel()
	for _, tc := range receivedCases {
		got := parseReceived(tc.field)
		if !got.Date.Equal(tc.want.Date) {
			t.Errorf("%s: date %v, want %v", tc.name, got.Date, tc.want.Date)
		}
		got.Date, tc.want.Date = time.Time{}, time.Time{}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestChain(t *testing.T) {
	t.Parallel()
	// Topmost first, as in a header; a hop without a date and one with a
	// bad date in the middle.
	fields := []string{
		"by store.example with LMTP; Thu, 03 Dec 2026 09:16:20 +0000",
		"from relay.example (relay.example [192.0.2.2]) by mx.example; Thu, 03 Dec 2026 09:16:10 +0000",
		"from relay.example ([192.0.2.2]) by filter.example",
		"from app.example ([192.0.2.1]) by relay.example; Thu, 03 Dec 2026 10:15:00 +0100",
		"from app.example ([192.0.2.1]) by relay.example; not a date",
		"from laptop ([10.0.0.1]) by app.example; Thu, 03 Dec 2026 09:14:58 +0000",
		"from phone ([10.0.0.2]) by laptop.example; Thu, 03 Dec 2026 09:14:50 +0000",
	}
	hops := chain(fields)
	type want struct {
		field int
		by    string
		delay time.Duration
		known bool
	}
	wants := []want{
		{7, "laptop.example", 0, false},
		{6, "app.example", 8 * time.Second, true},
		{5, "relay.example", 0, false},
		{4, "relay.example", 0, false}, // the hop before has no date
		{3, "filter.example", 0, false},
		{2, "mx.example", 0, false},
		{1, "store.example", 10 * time.Second, true},
	}
	if len(hops) != len(wants) {
		t.Fatalf("%d hops, want %d", len(hops), len(wants))
	}
	for i, w := range wants {
		h := hops[i]
		if h.Field != w.field || h.By != w.by || h.Delay != w.delay || h.DelayKnown != w.known {
			t.Errorf("hop %d: field %d by %s delay %v (%t), want field %d by %s delay %v (%t)", i+1, h.Field, h.By, h.Delay, h.DelayKnown, w.field, w.by, w.delay, w.known)
		}
	}
	// Consecutive dated hops: the delays, across time zones, and a
	// negative one (a clock behind) kept as it is.
	hops = chain([]string{
		"by c.example; Thu, 03 Dec 2026 09:15:00 +0000",
		"by b.example; Thu, 03 Dec 2026 10:16:01 +0100",
		"by a.example; Thu, 03 Dec 2026 04:14:58 -0500 (EST)",
	})
	for i, d := range []time.Duration{0, 63 * time.Second, -time.Minute - time.Second} {
		if hops[i].Delay != d || hops[i].DelayKnown != (i > 0) {
			t.Errorf("hop %d (by %s): delay %v (%t), want %v", i+1, hops[i].By, hops[i].Delay, hops[i].DelayKnown, d)
		}
	}
}

// TestChainLimit: past maxHops fields the chain keeps the topmost.
func TestChainLimit(t *testing.T) {
	t.Parallel()
	var fields []string
	for i := range maxHops + 50 {
		fields = append(fields, fmt.Sprintf("from h%d ([192.0.2.1]) by h%d", i+1, i))
	}
	hops := chain(fields)
	if len(hops) != maxHops || hops[len(hops)-1].By != "h0" || hops[0].Field != maxHops || hops[0].HELO != fmt.Sprintf("h%d", maxHops) {
		t.Errorf("%d hops, first %+v, last %+v", len(hops), hops[0], hops[len(hops)-1])
	}
}

func TestReadHeader(t *testing.T) {
	t.Parallel()
	msg := "Return-Path: <a@example.com>\r\nReceived: from x\r\n\tby y; Thu, 03 Dec 2026 09:15:00 +0000\r\nnot a field\r\n" +
		"RECEIVED:from z by w\nSubject: hi\r\n\r\nReceived: from body by body\r\n"
	rcv, rp := readHeader([]byte(msg))
	if want := []string{"from x by y; Thu, 03 Dec 2026 09:15:00 +0000", "from z by w"}; strings.Join(rcv, "|") != strings.Join(want, "|") {
		t.Errorf("Received %q, want %q", rcv, want)
	}
	if len(rp) != 1 || pathAddr(rp[0]) != "a@example.com" {
		t.Errorf("Return-Path %q", rp)
	}
	for in, want := range map[string]string{"<>": "", " <a@b.example> ": "a@b.example", "a@b.example": "a@b.example", "<a@b.example": "<a@b.example"} {
		if got := pathAddr(in); got != want {
			t.Errorf("pathAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClientFrom(t *testing.T) {
	t.Parallel()
	hops := chain([]string{
		"by store.example with LMTP; Thu, 03 Dec 2026 09:15:05 +0000",
		"from mta.example (mta.example [192.0.2.10]) by mx.example; Thu, 03 Dec 2026 09:15:04 +0000",
		"from app.example ([203.0.113.1]) by mta.example; Thu, 03 Dec 2026 09:15:00 +0000",
	})
	c, err := clientFrom(hops, []string{"<b@example.com>"})
	if err != nil || c.IP != ip("192.0.2.10") || c.HELO != "mta.example" || c.MailFrom != "b@example.com" || c.Source != "Received field 2, Return-Path" {
		t.Errorf("got %+v, %v", c, err)
	}
	exim := chain([]string{"from [192.0.2.3] (helo=h.example) by mx.example with esmtp (envelope-from <e@example.org>) id 1; Thu, 03 Dec 2026 09:15:04 +0000"})
	if c, _ := clientFrom(exim, nil); c.MailFrom != "e@example.org" || c.HELO != "h.example" {
		t.Errorf("exim: %+v", c)
	}
	if _, err := clientFrom(hops[2:], nil); err == nil {
		t.Error("a chain whose only field names no address gives a client")
	}
	if _, err := clientFrom(nil, nil); err == nil || !strings.Contains(err.Error(), "no Received field") {
		t.Errorf("no Received: %v", err)
	}
}

// FuzzReceived runs the parsers of hostile header text: Received fields,
// header blocks and DKIM-Signature tag lists. None may panic, and what
// they return must be consistent.
func FuzzReceived(f *testing.F) {
	for _, tc := range receivedCases {
		f.Add(tc.field)
	}
	f.Add("from ((((((((((( [1.2.3.4] helo=")
	f.Add("Received: from a\r\n (b [::1])\r\nReturn-Path: <>\r\n\r\n")
	f.Add("v=1; a=rsa-sha256; c=relaxed; bh=  ab cd ; bh=x; =; ;")
	f.Fuzz(func(t *testing.T, s string) {
		h := parseReceived(s)
		if h.Date.IsZero() == (h.DateErr == "") {
			t.Errorf("date %v and date error %q", h.Date, h.DateErr)
		}
		if h.IP.IsValid() && (h.IP.Zone() != "" || h.IP.Is4In6()) {
			t.Errorf("IP %v", h.IP)
		}
		if !strings.Contains(strings.ToLower(s), "from") && (h.From != "" || h.HELO != "" || h.RDNS != "" || h.IP.IsValid()) {
			t.Errorf("no FROM clause but %+v", h)
		}
		if len(tokenize(s)) > maxReceivedTokens {
			t.Error("more tokens than the limit")
		}
		rcv, rp := readHeader([]byte(s))
		for _, v := range append(rcv, rp...) {
			if strings.ContainsAny(v, "\r\n") {
				t.Errorf("field value %q not unfolded", v)
			}
		}
		for k := range parseTags(s) {
			if k == "" || k != strings.ToLower(k) {
				t.Errorf("tag name %q", k)
			}
		}
		chain([]string{s, s})
	})
}
