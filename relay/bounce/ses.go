package bounce

import (
	"encoding/json"
	"strings"
)

// Amazon SES sends its bounce, complaint and delivery notifications as
// JSON, to an address as a text/plain message, often wrapped in an SNS
// notification whose "Message" is the JSON as a string. The fields read
// here are those AWS documents for the notification contents
// (notificationType, bounce.bouncedRecipients[].emailAddress, action,
// status, diagnosticCode, complaint.complainedRecipients, delivery,
// mail.commonHeaders).

type sesRecipient struct {
	EmailAddress   string `json:"emailAddress"`
	Action         string `json:"action"`
	Status         string `json:"status"`
	DiagnosticCode string `json:"diagnosticCode"`
}

type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           *struct {
		BounceType        string         `json:"bounceType"`
		BounceSubType     string         `json:"bounceSubType"`
		BouncedRecipients []sesRecipient `json:"bouncedRecipients"`
		ReportingMTA      string         `json:"reportingMTA"`
		Timestamp         string         `json:"timestamp"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients  []sesRecipient `json:"complainedRecipients"`
		ComplaintFeedbackType string         `json:"complaintFeedbackType"`
		UserAgent             string         `json:"userAgent"`
		ArrivalDate           string         `json:"arrivalDate"`
	} `json:"complaint"`
	Delivery *struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
		RemoteMtaIP  string   `json:"remoteMtaIp"`
	} `json:"delivery"`
	Mail struct {
		MessageID     string   `json:"messageId"`
		Source        string   `json:"source"`
		Destination   []string `json:"destination"`
		CommonHeaders struct {
			From      []string `json:"from"`
			To        []string `json:"to"`
			MessageID string   `json:"messageId"`
			Subject   string   `json:"subject"`
			Date      string   `json:"date"`
		} `json:"commonHeaders"`
	} `json:"mail"`
}

// snsEnvelope is the SNS notification that carries an SES one.
type snsEnvelope struct {
	Type    string `json:"Type"`
	Message string `json:"Message"`
}

// findSES decodes an SES notification in text, nil when there is none.
// Line breaks are removed first: mail transport wraps long JSON lines, even
// inside strings.
func findSES(text string) *sesNotification {
	if !strings.Contains(text, `notificationType`) && !strings.Contains(text, `eventType`) {
		return nil
	}
	i := strings.IndexByte(text, '{')
	if i < 0 {
		return nil
	}
	text = strings.NewReplacer("\r", "", "\n", "").Replace(text[i:])
	dec := json.NewDecoder(strings.NewReader(text))
	var env struct {
		snsEnvelope
		sesNotification
	}
	if err := dec.Decode(&env); err != nil {
		return nil
	}
	n := env.sesNotification
	if env.Type == "Notification" && env.Message != "" {
		n = sesNotification{}
		if err := json.Unmarshal([]byte(env.Message), &n); err != nil {
			return nil
		}
	}
	if n.NotificationType == "" {
		n.NotificationType = n.EventType
	}
	switch {
	case n.NotificationType == "Bounce" && n.Bounce != nil,
		n.NotificationType == "Complaint" && n.Complaint != nil,
		n.NotificationType == "Delivery" && n.Delivery != nil:
		return &n
	}
	return nil
}

// sesReport fills rep from an SES notification.
func sesReport(rep *Report, n *sesNotification, maxRcpt int) {
	h := n.Mail.CommonHeaders
	rep.Original = Original{MessageID: strings.Trim(h.MessageID, "<>"), Subject: h.Subject, Date: parseDate(h.Date)}
	if rep.Original.MessageID == "" && n.Mail.MessageID != "" {
		// SES sends with Message-ID <id@email.amazonses.com>.
		rep.Original.MessageID = n.Mail.MessageID + "@email.amazonses.com"
	}
	if len(h.From) > 0 {
		if a := headerAddresses(h.From[0]); len(a) > 0 {
			rep.Original.From = a[0]
		}
	}
	for _, t := range h.To {
		rep.Original.To = append(rep.Original.To, headerAddresses(t)...)
	}
	rep.Original.ReturnPath = n.Mail.Source
	add := func(rc Recipient) {
		if len(rep.Recipients) >= maxRcpt {
			rep.Truncated = LimitRecipients
			return
		}
		rep.Recipients = append(rep.Recipients, rc)
	}
	switch {
	case n.NotificationType == "Bounce" && n.Bounce != nil:
		rep.Kind, rep.Format = KindBounce, "amazonses"
		_, rep.ReportingMTA = typed(n.Bounce.ReportingMTA)
		rep.ReportingMTA = mtaName(rep.ReportingMTA)
		for _, br := range n.Bounce.BouncedRecipients {
			r := &dsnRecipient{status: validStatus(br.Status)}
			r.Address = cleanAddress(br.EmailAddress)
			r.Action = Action(strings.ToLower(br.Action))
			if r.Action == "" {
				r.Action = ActionFailed
				if n.Bounce.BounceType == "Transient" {
					r.Action = ActionDelayed
				}
			}
			t, v := typed(br.DiagnosticCode)
			r.DiagnosticType, r.Diagnostic = strings.ToLower(t), oneLine(v)
			if r.Diagnostic == "" {
				r.Diagnostic = n.Bounce.BounceType + " " + n.Bounce.BounceSubType
			}
			r.settle()
			classify(&r.Recipient, "")
			add(r.Recipient)
		}
	case n.NotificationType == "Complaint" && n.Complaint != nil:
		rep.Kind, rep.Format = KindFeedback, "amazonses"
		fb := &Feedback{Type: strings.ToLower(n.Complaint.ComplaintFeedbackType), UserAgent: n.Complaint.UserAgent, Incidents: 1,
			OriginalMailFrom: n.Mail.Source, ArrivalDate: parseDate(n.Complaint.ArrivalDate)}
		if fb.Type == "" {
			fb.Type = "abuse"
		}
		for _, cr := range n.Complaint.ComplainedRecipients {
			fb.OriginalRcptTo = append(fb.OriginalRcptTo, cleanAddress(cr.EmailAddress))
			add(Recipient{Address: cleanAddress(cr.EmailAddress), Reason: ReasonFeedback})
		}
		rep.Feedback = fb
	case n.NotificationType == "Delivery" && n.Delivery != nil:
		rep.Kind, rep.Format = KindDSN, "amazonses"
		rep.ReportingMTA = mtaName(n.Delivery.ReportingMTA)
		for _, a := range n.Delivery.Recipients {
			rc := Recipient{Address: cleanAddress(a), Action: ActionDelivered, Diagnostic: oneLine(n.Delivery.SMTPResponse), DiagnosticType: "smtp"}
			rc.ReplyCode, rc.Status = smtpCodes(rc.Diagnostic)
			if rc.Status == "" {
				rc.Status = "2.0.0"
			}
			rc.Reason = ReasonDelivered
			add(rc)
		}
	}
}
