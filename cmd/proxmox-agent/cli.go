package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/logging"
)

// flags holds every subcommand's flags; each subcommand defines only its own.
type flags struct {
	config    string
	dumpDir   string
	logFormat string
	logLevel  string
	source    string
	json      bool
	socket    string
	since     string
	until     string
	dryRun    bool
	spool     string
}

// flagDefs defines each flag by name, so a subcommand lists the names it
// takes and an unknown one can be told apart from another subcommand's.
var flagDefs = map[string]func(*flag.FlagSet, *flags){
	"config": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.config, "config", "", "config file `PATH` (default $"+config.EnvPath+", else "+config.DefaultPath+")")
	},
	"dump-dir": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.dumpDir, "dump-dir", "", "write the diagnostic dump into `DIR` (overrides [debug] dump_dir)")
	},
	"log-format": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.logFormat, "log-format", "", "log `FORMAT`: text or json (overrides [log] format)")
	},
	"log-level": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.logLevel, "log-level", "", "log `LEVEL`: debug, info, warn or error (overrides [log] level)")
	},
	"source": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.source, "source", "", "run only the source `NAME` (one of "+strings.Join(collect.Names(), ", ")+")")
	},
	"json": func(fs *flag.FlagSet, f *flags) {
		fs.BoolVar(&f.json, "json", false, "print the JSON document")
	},
	"socket": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.socket, "socket", "", "the agent's status socket `PATH` (default: [status] socket of the config)")
	},
	"since": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.since, "since", "", "only samples collected at or after `TIME` (RFC 3339)")
	},
	"until": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.until, "until", "", "only samples collected before `TIME` (RFC 3339)")
	},
	"dry-run": func(fs *flag.FlagSet, f *flags) {
		fs.BoolVar(&f.dryRun, "dry-run", false, "list what would be pushed, push nothing")
	},
	"spool": func(fs *flag.FlagSet, f *flags) {
		fs.StringVar(&f.spool, "spool", "", "salvage `FILE`, a damaged spool moved aside (spool.db.corrupt-<time>): push the records still readable in it")
	},
}

// command is one subcommand: its flags, whether it takes arguments, and
// what it does.
type command struct {
	name     string
	args     string // synopsis of the positional arguments; "" = none taken
	summary  string
	flags    []string
	minArgs  int
	maxArgs  int // -1: any number
	run      func(f flags, args []string, stdout, stderr io.Writer) int
	validate func(f flags) string
}

// logFlags are the flags of every subcommand that logs.
var logFlags = []string{"log-level", "log-format"}

func commands() []command {
	return []command{
		{name: "run", summary: "start the agent (the default command)",
			flags: append([]string{"config", "dump-dir"}, logFlags...),
			run:   func(f flags, _ []string, _, stderr io.Writer) int { return daemon(f, stderr) }},
		{name: "once", summary: "collect every cadence once, print the payloads as JSON, connect nowhere",
			flags: append([]string{"config", "dump-dir", "source"}, logFlags...),
			run:   func(f flags, _ []string, stdout, stderr io.Writer) int { return once(f, stdout, stderr) },
			validate: func(f flags) string {
				if f.source == "" {
					return ""
				}
				if err := collect.CheckSourceName(f.source); err != nil {
					return err.Error()
				}
				return ""
			}},
		{name: "check-config", summary: "validate the config file; exit 0 if good, 1 with every reason",
			flags: []string{"config"},
			run:   func(f flags, _ []string, stdout, stderr io.Writer) int { return checkConfig(f, stdout, stderr) }},
		{name: "status", summary: "ask the running agent where delivery and collection stand (exit 1 when none answers)",
			flags: []string{"config", "socket", "json"},
			run:   func(f flags, _ []string, stdout, stderr io.Writer) int { return statusCmd(f, stdout, stderr) }},
		{name: "replay", args: "FILE…", summary: "push every sample of a dump's samples.log or set-aside.log files (or, with --spool, of a damaged spool file) to the server",
			flags: append([]string{"config", "since", "until", "dry-run", "spool"}, logFlags...), maxArgs: -1,
			run: replayCmd},
		{name: "version", summary: "print the version (also --version, -v)",
			run: func(_ flags, _ []string, stdout, _ io.Writer) int { return printVersion(stdout) }},
		{name: "help", args: "[COMMAND]", summary: "print this help, or a command's", maxArgs: 1,
			run: nil}, // handled by run
	}
}

func printVersion(stdout io.Writer) int {
	fmt.Fprintln(stdout, "proxmox-agent", agentVersion())
	return 0
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run parses the command line and runs the subcommand. Exit 2 is a usage
// error, said in one line on stderr; asked-for help goes to stdout, exit 0.
func run(args []string, stdout, stderr io.Writer) int {
	name := "run"
	switch {
	case len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "-v"):
		if len(args) > 1 {
			return usageError(stderr, "", "unexpected argument "+quote(args[1])+" after "+args[0])
		}
		return printVersion(stdout)
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		name, args = args[0], args[1:]
	case wantsHelp(args):
		return globalHelp(stdout)
	}
	cmd, ok := findCommand(name)
	if !ok {
		return usageError(stderr, "", "unknown command "+quote(name))
	}
	if wantsHelp(args) {
		return commandHelp(stdout, cmd)
	}
	if cmd.name == "help" {
		return helpCmd(args, stdout, stderr)
	}
	f, positional, msg := parseFlags(cmd, args)
	if msg != "" {
		return usageError(stderr, cmd.name, msg)
	}
	return cmd.run(f, positional, stdout, stderr)
}

// parseFlags parses args with cmd's flags and checks their values; msg
// says what is wrong ("" when nothing is).
func parseFlags(cmd command, args []string) (f flags, positional []string, msg string) {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, n := range cmd.flags {
		flagDefs[n](fs, &f)
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return f, nil, flagMessage(cmd, err)
	}
	if cmd.maxArgs >= 0 && len(positional) > cmd.maxArgs {
		return f, nil, "unexpected argument " + quote(positional[cmd.maxArgs])
	}
	if f.logLevel != "" {
		if _, err := logging.New(io.Discard, "", f.logLevel); err != nil {
			return f, nil, "--log-level " + quote(f.logLevel) + ": want debug, info, warn or error"
		}
	}
	if f.logFormat != "" {
		if _, err := logging.New(io.Discard, f.logFormat, ""); err != nil {
			return f, nil, "--log-format " + quote(f.logFormat) + ": want text or json"
		}
	}
	if cmd.validate != nil {
		msg = cmd.validate(f)
	}
	return f, positional, msg
}

// flagMessage turns the flag package's error into one line that says
// whether the flag belongs to another subcommand.
func flagMessage(cmd command, err error) string {
	s := err.Error()
	if name, ok := strings.CutPrefix(s, "flag provided but not defined: -"); ok {
		if _, known := flagDefs[name]; known || name == "version" || name == "v" {
			return "flag --" + name + " is not a flag of " + cmd.name
		}
		return "unknown flag --" + name
	}
	if name, ok := strings.CutPrefix(s, "flag needs an argument: -"); ok {
		return "flag --" + name + " needs a value"
	}
	return s
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// usageError prints "proxmox-agent CMD: MSG (see proxmox-agent CMD --help)"
// and returns 2.
func usageError(stderr io.Writer, cmd, msg string) int {
	prog := "proxmox-agent"
	if cmd != "" {
		prog += " " + cmd
	}
	fmt.Fprintf(stderr, "%s: %s (see %s --help)\n", prog, msg, prog)
	return 2
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments ("replay a.log --since T b.log"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// wantsHelp reports -h, -help or --help among the flags (before a "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func helpCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return globalHelp(stdout)
	}
	if len(args) > 1 {
		return usageError(stderr, "help", "unexpected argument "+quote(args[1]))
	}
	cmd, ok := findCommand(args[0])
	if !ok {
		return usageError(stderr, "help", "unknown command "+quote(args[0]))
	}
	return commandHelp(stdout, cmd)
}

func globalHelp(w io.Writer) int {
	fmt.Fprint(w, "usage: proxmox-agent [COMMAND] [FLAGS]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nflags of run (the default command):\n")
	run, _ := findCommand("run")
	printFlags(w, run)
	fmt.Fprint(w, "\nEach command's own flags: proxmox-agent COMMAND --help.\n")
	return 0
}

func commandHelp(w io.Writer, cmd command) int {
	syn := "proxmox-agent " + cmd.name
	if len(cmd.flags) > 0 {
		syn += " [FLAGS]"
	}
	if cmd.args != "" {
		syn += " " + cmd.args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", syn, cmd.summary)
	if len(cmd.flags) > 0 {
		fmt.Fprint(w, "\nflags:\n")
		printFlags(w, cmd)
	}
	return 0
}

// printFlags lists cmd's flags as "--name VALUE  usage", in cmd's order.
func printFlags(w io.Writer, cmd command) {
	var f flags
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	for _, n := range cmd.flags {
		flagDefs[n](fs, &f)
	}
	for _, n := range cmd.flags {
		fl := fs.Lookup(n)
		arg, usage := flag.UnquoteUsage(fl)
		left := "--" + n
		if arg != "" {
			left += " " + arg
		}
		fmt.Fprintf(w, "  %-22s %s\n", left, usage)
	}
}
