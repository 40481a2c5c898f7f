package deploy

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"time"
)

// A machine's log is lines of
//
//	2026-03-01T10:00:00.000+01:00 build: started
//	2026-03-01T10:00:00.000+01:00 build: $ nix build --no-link ...
//	2026-03-01T10:00:03.141+01:00 build| building '/nix/store/...'
//	2026-03-01T10:00:12.345+01:00 build: ok 12.3s
//
// ": " marks the executor's lines, "| " the step's output, so grep can
// tell them apart. Steps of one machine may run at once; each line is
// written whole under the machine's lock, so their lines interleave but
// never mix. A log that cannot be written does not fail the step: the
// deploy matters more than its log.

const logTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// maxPartialLine bounds how much of an unfinished line a step's writer
// holds (a progress bar redrawn with \r, say) before writing it anyway.
const maxPartialLine = 64 << 10

type machineLog struct {
	mu     sync.Mutex
	f      *os.File
	buf    []byte
	closed bool
}

// line writes executor lines, in one write; a multi-line text (an error quoting a
// command's stderr) becomes several, each with its time and label.
func (l *machineLog) line(t time.Time, label string, texts ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	for _, text := range texts {
		for line := range strings.Lines(text) {
			b = appendLogLine(b, t, label, ": ", []byte(strings.TrimRight(line, "\r\n")))
		}
	}
	l.flushLocked(b)
}

// write writes a line of output.
func (l *machineLog) write(t time.Time, label, sep string, text []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(appendLogLine(l.buf[:0], t, label, sep, text))
}

func (l *machineLog) flushLocked(b []byte) {
	l.buf = b
	if !l.closed && len(b) > 0 {
		_, _ = l.f.Write(b)
	}
}

func appendLogLine(b []byte, t time.Time, label, sep string, text []byte) []byte {
	b = t.AppendFormat(b, logTimeLayout)
	b = append(b, ' ')
	b = append(b, label...)
	b = append(b, sep...)
	b = append(b, text...)
	return append(b, '\n')
}

// close stops the log; a step's goroutine that outlived its step writes
// nothing more.
func (l *machineLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		_ = l.f.Close()
	}
}

// stepWriter is a step's output: whole lines go to the machine's log, each
// with the time it was completed. os/exec copies stdout and stderr from
// two goroutines, hence the lock.
type stepWriter struct {
	log     *machineLog
	label   string
	mu      sync.Mutex
	partial []byte
}

func (w *stepWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxPartialLine {
				w.flushLocked()
			}
			break
		}
		line := p[:i]
		if len(w.partial) > 0 {
			w.partial = append(w.partial, line...)
			line = w.partial
		}
		w.log.write(time.Now(), w.label, "| ", bytes.TrimSuffix(line, []byte("\r")))
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush writes an unfinished last line.
func (w *stepWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

func (w *stepWriter) flushLocked() {
	if len(w.partial) > 0 {
		w.log.write(time.Now(), w.label, "| ", bytes.TrimSuffix(w.partial, []byte("\r")))
		w.partial = w.partial[:0]
	}
}
