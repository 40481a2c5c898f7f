package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine"
	pins "github.com/fleet-nix/fleet/engine/deps"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/urfave/cli/v2"
)

func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the help of fleet or of a command: fleet help deploy, fleet help secrets generate",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 {
				return cli.ShowAppHelp(c)
			}
			cs, path := c.App.Commands, ""
			for _, a := range args {
				cmd := findCommand(cs, a)
				if cmd == nil {
					return noCommand(path, a, cs)
				}
				path, cs = strings.TrimSpace(path+" "+cmd.Name), cmd.Subcommands
			}
			return c.App.RunContext(c.Context, append(append([]string{c.App.Name}, args...), "--help"))
		},
	}
}

var shells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Prints a script that completes fleet's commands, subcommands and flags, the values
of --goal, --build-on and --format, and, for --on, --exclude and --machine, the
machines and @tags of the fleet (./fleet.star, or the FILE on the command line; the
script asks fleet, which evaluates it quietly and offline). Load it with:

  bash:  source <(fleet completion bash)          (in ~/.bashrc)
  zsh:   source <(fleet completion zsh)           (in ~/.zshrc, after compinit)
  fish:  fleet completion fish | source           (in ~/.config/fish/config.fish)`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion: name the shell: %s", orList(shells))
			}
			script := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}[c.Args().First()]
			if script == "" {
				sh := c.Args().First()
				return usagef("completion: no shell %q: use %s%s", sh, orList(shells), builtins.DidYouMean(sh, shells))
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

// The scripts hand the words typed so far (the last one being completed,
// maybe empty) to fleet __complete, which prints the candidates, one a
// line; none means "complete file names".
const bashCompletion = `# bash completion for fleet: source <(fleet completion bash)
_fleet() {
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words
    read -r -a words <<< "$line"
    [[ $line == *[[:space:]] ]] && words+=("")
    local full=${words[${#words[@]}-1]}
    local cur=${COMP_WORDS[COMP_CWORD]}
    local pre=${full%"$cur"}
    local IFS=$'\n'
    local -a cands
    cands=($(command fleet __complete "${words[@]:1}" 2>/dev/null))
    if (( ${#cands[@]} == 0 )); then
        return 0
    fi
    COMPREPLY=("${cands[@]#"$pre"}")
}
complete -o default -F _fleet fleet
`

const zshCompletion = `#compdef fleet
# zsh completion for fleet: source <(fleet completion zsh)
_fleet() {
    local -a cands
    cands=("${(@f)$(command fleet __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    cands=(${cands:#})
    if (( ${#cands} )); then
        compadd -Q -- "${cands[@]}"
    else
        _files
    fi
}
compdef _fleet fleet
`

const fishCompletion = `# fish completion for fleet: fleet completion fish | source
function __fleet_complete
    set -l words (commandline -opc) (commandline -ct)
    set -l cands (command fleet __complete $words[2..-1] 2>/dev/null)
    if test (count $cands) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\n' $cands
    end
end
complete -c fleet -f -a '(__fleet_complete)'
`

// completeCommand is what the scripts call: fleet __complete WORD...
// prints the candidates for the last word. It never fails: whatever goes
// wrong (no fleet.star, an error in it) gives fewer candidates.
func completeCommand() *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			for _, s := range complete(c, c.Args().Slice()) {
				fmt.Fprintln(c.App.Writer, s)
			}
			return nil
		},
	}
}

// complete returns the candidates for the last of words (the words after
// "fleet"), those starting with it.
func complete(c *cli.Context, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, prev := words[len(words)-1], words[:len(words)-1]
	cmds := c.App.Commands
	var cmd *cli.Command
	flags := []cli.Flag{cli.HelpFlag}
	var positional []string
	file := ""
	for i := 0; i < len(prev); i++ {
		w := prev[i]
		if w == "--" {
			return nil // exec's command: the shell's files
		}
		if strings.HasPrefix(w, "-") && w != "-" {
			name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if f := findFlag(flags, name); f != nil && takesValue(f) && !hasValue && i+1 < len(prev) {
				i++
				value = prev[i]
			}
			if name == "file" || name == "f" {
				file = value
			}
			continue
		}
		if sub := findCommand(cmds, w); sub != nil && len(positional) == 0 {
			cmd, cmds, flags = sub, sub.Subcommands, sub.Flags
			continue
		}
		positional = append(positional, w)
	}
	if file == "" && len(positional) > 0 && looksLikeFile(positional[0]) {
		file = positional[0]
	}
	var cands []string
	switch {
	case len(prev) > 0 && strings.HasPrefix(prev[len(prev)-1], "-") && !strings.Contains(prev[len(prev)-1], "="):
		f := findFlag(flags, strings.TrimLeft(prev[len(prev)-1], "-"))
		if f == nil || !takesValue(f) {
			break
		}
		if cs := choices(f); cs != nil {
			cands = cs
		} else if selectorFlag(f) || f.Names()[0] == "machine" {
			cands = fleetNames(c, file, selectorFlag(f))
		} else {
			return nil // a path, a number: the shell's
		}
	case strings.HasPrefix(cur, "-"):
		for _, f := range flags {
			if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
				continue
			}
			cands = append(cands, "--"+f.Names()[0])
		}
	case cmd == nil || len(cmds) > 0 && len(positional) == 0:
		for _, x := range cmds {
			if !x.Hidden {
				cands = append(cands, x.Name)
			}
		}
	case cmd.Name == "completion":
		cands = shells
	case cmd.Name == "up" || cmd.Name == "down" || cmd.Name == "adopt" && (len(positional) > 0 || !looksLikeFile(cur)):
		cands = fleetNames(c, file, cmd.Name == "adopt")
	case cmd.Name == "help":
		cs := c.App.Commands
		for _, p := range positional {
			if x := findCommand(cs, p); x != nil {
				cs = x.Subcommands
			} else {
				cs = nil
			}
		}
		cands = commandNames(cs)
	}
	var out []string
	for _, s := range cands {
		if strings.HasPrefix(s, cur) {
			out = append(out, s)
		}
	}
	return out
}

func takesValue(f cli.Flag) bool {
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}

// fleetNames evaluates the fleet quietly, offline and briefly, and
// returns its machines' names, with selectors its @tags and "all" too;
// nothing when it cannot.
func fleetNames(c *cli.Context, file string, selectors bool) []string {
	path, err := fleetFile(c, file)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
	defer cancel()
	opts := engine.Options{Stderr: io.Discard}
	if dir := filepath.Dir(path); pins.HasDeps(dir) {
		p, err := newProject(dir, dir)
		if err != nil {
			return nil
		}
		r, err := p.Resolver(pins.ResolverOptions{Context: ctx, Offline: true, Log: io.Discard})
		if err != nil {
			return nil
		}
		opts.Deps = r.Dir
	}
	f, err := engine.Eval(ctx, path, opts)
	if err != nil {
		return nil
	}
	return machineNames(f, selectors)
}

func machineNames(f *model.Fleet, selectors bool) []string {
	var out []string
	tags := map[string]bool{}
	for _, m := range f.Machines {
		out = append(out, m.Name)
		for _, t := range m.Tags {
			tags[t] = true
		}
	}
	if selectors {
		for t := range tags {
			out = append(out, "@"+t)
		}
		out = append(out, "all")
	}
	slices.Sort(out)
	return out
}
