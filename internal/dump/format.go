// Package dump formats diagnostic dump entries and provides the Handle that
// call sites use to send them to the writer actor.
//
// The entry formats are the Elixir agent's (see README "Diagnostic dump"):
// grep-friendly "=====" separators, the command line as typed, a status line,
// the raw body, a blank line.
package dump

import (
	"strconv"
	"strings"
	"time"
)

// TimeLayout renders entry times: UTC RFC 3339 with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Timestamp formats t as the dump and the payloads do.
func Timestamp(t time.Time) string { return t.UTC().Format(TimeLayout) }

// AppendCommand appends one commands.log entry for r to buf.
//
//	===== <time> =====
//	$ <cmd> <args...>
//	exit=<code> duration=<ms>ms size=<stdout bytes>
//	(blank)
//	<stdout>[stderr block]
//	(blank)
//
// A command that produced no exit status (not found, timed out, stuck) gets
// "error=<reason> duration=<ms>ms" and no body. stderr, which the Elixir agent
// merged into the body, is kept apart here and appended after stdout under a
// "----- stderr size=N -----" line only when non-empty.
func AppendCommand(buf []byte, r *CommandRecord) []byte {
	buf = append(buf, "===== "...)
	buf = r.At.UTC().AppendFormat(buf, TimeLayout)
	buf = append(buf, " =====\n$ "...)
	buf = append(buf, r.Command...)
	// The seed joined command and args with one space even when args is empty.
	buf = append(buf, ' ')
	buf = append(buf, strings.Join(r.Args, " ")...)
	buf = append(buf, '\n')
	ms := strconv.FormatInt(r.Duration.Milliseconds(), 10)
	switch r.Outcome {
	case OK, NonZero:
		buf = append(buf, "exit="...)
		buf = strconv.AppendInt(buf, int64(r.ExitCode), 10)
		buf = append(buf, " duration="...)
		buf = append(buf, ms...)
		buf = append(buf, "ms size="...)
		if r.ReadBytes > len(r.Stdout) {
			buf = strconv.AppendInt(buf, int64(r.ReadBytes), 10)
			buf = append(buf, " shown=last "...)
			buf = strconv.AppendInt(buf, int64(len(r.Stdout)), 10)
			buf = append(buf, " bytes"...)
		} else {
			buf = strconv.AppendInt(buf, int64(len(r.Stdout)), 10)
		}
		if r.Truncated {
			buf = append(buf, " truncated=true"...)
		}
		buf = append(buf, "\n\n"...)
		buf = append(buf, r.Stdout...)
		if len(r.Stderr) > 0 {
			buf = append(buf, "\n----- stderr size="...)
			buf = strconv.AppendInt(buf, int64(len(r.Stderr)), 10)
			buf = append(buf, " -----\n"...)
			buf = append(buf, r.Stderr...)
		}
		buf = append(buf, "\n\n"...)
	default:
		buf = append(buf, "error="...)
		reason := r.Err
		if reason == "" {
			reason = r.Outcome.String()
		}
		buf = append(buf, reason...)
		buf = append(buf, " duration="...)
		buf = append(buf, ms...)
		buf = append(buf, "ms\n\n"...)
	}
	return buf
}

// AppendSample appends one samples.log entry:
//
//	===== <time> kind=<kind> =====
//	<indented JSON payload>
//	(blank)
func AppendSample(buf []byte, r *SampleRecord) []byte {
	buf = append(buf, "===== "...)
	buf = r.At.UTC().AppendFormat(buf, TimeLayout)
	buf = append(buf, " kind="...)
	buf = append(buf, r.Kind...)
	buf = append(buf, " =====\n"...)
	buf = append(buf, r.Payload...)
	buf = append(buf, "\n\n"...)
	return buf
}
