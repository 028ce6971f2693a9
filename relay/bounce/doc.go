// Package bounce reads the reports that come back to a return path: RFC
// 3464 delivery status notifications, the plain-text bounces of MTAs that
// write none, RFC 5965 feedback reports and RFC 3834 auto-replies.
//
// Parse reads one received message and returns a Report: what kind of
// report it is, and for each recipient it concerns the status (RFC 3463),
// the SMTP reply, the diagnostic, the remote MTA, a Reason keyword, and
// whether the failure is hard: the address will fail again on retry, which
// is what a suppression list wants. The Report also carries what maps it
// back to the original message: the Original-Envelope-Id, the header of
// the returned message, and the address the report was sent to (a VERP
// return path, bounces+<id>@...).
//
// Parse reads through limits first (size, MIME parts, nesting,
// recipients); memory does not grow with the size of the message.
//
// The package does not import package relay, so that relay can import it.
package bounce
