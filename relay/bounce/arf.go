package bounce

import (
	"net/netip"
	"strconv"
	"strings"
)

// A feedback report (RFC 5965 §2) is a multipart/report of report-type
// feedback-report whose second part, message/feedback-report, holds
// header-syntax fields (§3.1 required: Feedback-Type, User-Agent,
// Version; §3.2 optional: Original-Mail-From, Original-Rcpt-To,
// Arrival-Date, Source-IP, Reported-Domain, Reported-URI, Incidents ...),
// and whose third part is the reported message or its header. Older
// reports say Received-Date for Arrival-Date (the ARF draft); those of
// authentication failures add Auth-Failure (RFC 6591 §3.1).

// arf is what the fields of a feedback report gave.
type arf struct {
	fb           Feedback
	envid        string
	reportingMTA string
	removal      []string // Removal-Recipient of opt-out reports (ARF draft)
	truncated    bool     // more Original-Rcpt-To than the limit
}

// parseARF reads the fields of a message/feedback-report part. Repeated
// fields that may occur once keep their first value.
func parseARF(body string, maxRcpt int) *arf {
	a := &arf{fb: Feedback{Incidents: 1}}
	for _, group := range fieldGroups(body, 64+maxRcpt) {
		for _, f := range group {
			v := f.value
			switch f.name {
			case "feedback-type":
				if a.fb.Type == "" {
					a.fb.Type = strings.ToLower(v)
				}
			case "user-agent":
				if a.fb.UserAgent == "" {
					a.fb.UserAgent = v
				}
			case "version":
				if a.fb.Version == "" {
					a.fb.Version = v
				}
			case "original-mail-from":
				if a.fb.OriginalMailFrom == "" {
					a.fb.OriginalMailFrom = cleanAddress(v)
				}
			case "original-rcpt-to":
				if len(a.fb.OriginalRcptTo) < maxRcpt {
					a.fb.OriginalRcptTo = append(a.fb.OriginalRcptTo, cleanAddress(v))
				} else {
					a.truncated = true
				}
			case "arrival-date", "received-date":
				if a.fb.ArrivalDate.IsZero() {
					a.fb.ArrivalDate = parseDate(v)
				}
			case "source-ip":
				if !a.fb.SourceIP.IsValid() {
					if ip, err := netip.ParseAddr(strings.Trim(v, "[] ")); err == nil {
						a.fb.SourceIP = ip
					}
				}
			case "reported-domain":
				a.fb.ReportedDomain = append(a.fb.ReportedDomain, strings.ToLower(v))
			case "reported-uri":
				a.fb.ReportedURI = append(a.fb.ReportedURI, cleanAddress(v))
			case "incidents":
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					a.fb.Incidents = n
				}
			case "auth-failure":
				if a.fb.AuthFailure == "" {
					a.fb.AuthFailure = strings.ToLower(v)
				}
			case "original-envelope-id":
				if a.envid == "" {
					a.envid = v
				}
			case "reporting-mta":
				if a.reportingMTA == "" {
					_, a.reportingMTA = typed(v)
					a.reportingMTA = mtaName(a.reportingMTA)
				}
			case "removal-recipient":
				if len(a.removal) < maxRcpt {
					a.removal = append(a.removal, cleanAddress(v))
				}
			}
		}
	}
	return a
}

// feedbackReport fills rep from a feedback report: one recipient for each
// Original-Rcpt-To (RFC 5965 §3.2), else each Removal-Recipient, else each
// address in the To field of the reported message, else one without an
// address: a report always concerns at least one delivery.
func feedbackReport(rep *Report, a *arf, maxRcpt int) {
	rep.Kind, rep.Format = KindFeedback, "rfc5965"
	fb := a.fb
	rep.Feedback = &fb
	rep.OriginalEnvelopeID = a.envid
	rep.ReportingMTA = a.reportingMTA
	rep.ArrivalDate = fb.ArrivalDate
	if a.truncated {
		rep.Truncated = LimitRecipients
	}
	rcpts := fb.OriginalRcptTo
	if len(rcpts) == 0 {
		rcpts = a.removal
	}
	if len(rcpts) == 0 {
		rcpts = rep.Original.To
	}
	if len(rcpts) == 0 {
		rcpts = []string{""}
	}
	for i, addr := range rcpts {
		if i >= maxRcpt {
			rep.Truncated = LimitRecipients
			break
		}
		rep.Recipients = append(rep.Recipients, Recipient{Address: addr, Reason: ReasonFeedback})
	}
}
