// Package plaintext keeps the folders that hold decrypted values (a
// gen.command's $in and $out, a GCE key file, a host key for an install)
// in one private place per user, and removes the ones a killed run left.
//
// The place is $XDG_RUNTIME_DIR/fleet when XDG_RUNTIME_DIR names a
// folder (a per-user tmpfs on systemd machines), otherwise
// os.TempDir()/fleet-<uid>. It is made 0700; an existing one that is not
// a real folder, belongs to another user or is open to others is refused.
// Every folder in it is named <prefix><pid>-<random>, pid being the
// process that made it, so that Sweep can tell the folders of a run that
// is gone (killed with -9, or by a power cut) from those of one that still
// runs.
//
// Folders that must hold Unix sockets (ssh's control sockets, whose path
// may not exceed about 100 bytes) are made in the short place,
// os.TempDir()/fleet-<uid>, under the same rules; Sweep sweeps both.
//
// The programs a run starts for a folder (a gen.command, ssh) go with it:
// Supervise puts each in a process group of its own, which cancelling
// kills, makes it die with fleet on Linux (even kill -9), and marks its
// environment with the folder (FLEET_PRIVATE_DIR), so that Sweep can find
// and stop what a killed run's programs left running (on Linux, through
// /proc) before it removes their folder.
package plaintext

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Base returns the private folder, making it if needed.
func Base() (string, error) {
	return ensure(baseDir())
}

// ensure makes dir (0700) if needed and checks that it is private.
func ensure(dir string) (string, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("private folder for plaintext: %v", err)
	}
	if err := checkPrivate(dir); err != nil {
		return "", err
	}
	return dir, nil
}

func baseDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return filepath.Join(d, "fleet")
		}
	}
	return shortBaseDir()
}

func shortBaseDir() string {
	return filepath.Join(os.TempDir(), "fleet-"+strconv.Itoa(os.Getuid()))
}

// bases are the places Sweep looks, each once.
func bases() []string {
	if b, s := baseDir(), shortBaseDir(); b != s {
		return []string{b, s}
	}
	return []string{shortBaseDir()}
}

// MkdirTemp makes a new 0700 folder in Base, named prefix, this process's
// pid, a dash and a random part. The caller removes it when done.
func MkdirTemp(prefix string) (string, error) {
	base, err := Base()
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(base, prefix+strconv.Itoa(os.Getpid())+"-")
}

// MkdirTempShort is MkdirTemp in the short place, for folders that hold
// Unix sockets.
func MkdirTempShort(prefix string) (string, error) {
	base, err := ensure(shortBaseDir())
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(base, prefix+strconv.Itoa(os.Getpid())+"-")
}

// MarkerVar is the environment variable that Supervise sets to the
// folder a program was started for.
const MarkerVar = "FLEET_PRIVATE_DIR"

// Sweep removes the folders in both places whose making process is gone,
// after stopping the programs still running for them (see Supervise). It
// does nothing when a place does not exist yet, and refuses (error) one
// that is not private. Folders of running processes, and anything not
// named as MkdirTemp names, are left alone.
func Sweep() error {
	var stale, errs []string
	for _, dir := range bases() {
		if _, err := os.Lstat(dir); os.IsNotExist(err) {
			continue
		}
		if err := checkPrivate(dir); err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("private folder for plaintext: %v", err)
		}
		for _, e := range entries {
			pid, ok := ownerPid(e.Name())
			if !ok || pid == os.Getpid() || processExists(pid) {
				continue
			}
			stale = append(stale, filepath.Join(dir, e.Name()))
		}
	}
	if len(stale) == 0 {
		return nil
	}
	if err := killMarked(stale); err != nil {
		errs = append(errs, err.Error())
	}
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("removing plaintext left by a killed run: %s", strings.Join(errs, "; "))
	}
	return nil
}

// ownerPid reads the pid out of a name <prefix><pid>-<random>, the prefix
// starting with "fleet-" and ending with '-'.
func ownerPid(name string) (int, bool) {
	if !strings.HasPrefix(name, "fleet-") {
		return 0, false
	}
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return 0, false
	}
	rest := name[:i]
	j := strings.LastIndexByte(rest, '-')
	pid, err := strconv.Atoi(rest[j+1:])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}
