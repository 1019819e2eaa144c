package dump

import "time"

// Outcome classifies how an external command or file read ended.
type Outcome int

// The outcomes a command can have. OK and NonZero carry output; the rest do not.
const (
	OK       Outcome = iota // exit 0
	NonZero                 // ran and exited non-zero; ExitCode and output are set
	NotFound                // binary or file does not exist
	TimedOut                // killed after its timeout
	Stuck                   // not started: an earlier run of the same command is still outstanding
	Failed                  // any other error (permission, spawn failure, read error)
)

var outcomeNames = [...]string{"ok", "nonzero", "not_found", "timed_out", "stuck", "failed"}

// String names the outcome for logs and error entries.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// CommandRecord is one external command (or /proc read, as "cat <path>") for
// the dump's commands.log.
type CommandRecord struct {
	At       time.Time // when it finished
	Command  string
	Args     []string
	Outcome  Outcome
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Truncated is set when output was cut at the runner's cap.
	Truncated bool
	// ReadBytes, when larger than len(Stdout), is how much was read: the
	// entry then shows only Stdout, the end of it (a task log's tail is
	// megabytes, and the dump needs its last lines, not all of them).
	ReadBytes int
	// Err describes the failure for outcomes without output.
	Err      string
	Duration time.Duration

	ticket
}

// SampleRecord is the exact payload pushed for one sample, for samples.log.
type SampleRecord struct {
	At      time.Time
	Kind    string
	Payload []byte // indented JSON

	ticket
}
