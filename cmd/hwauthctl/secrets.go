package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// maxSecretLen bounds one typed secret.
const maxSecretLen = 256

// secretReader asks for PINs and PUKs: on the terminal without echo, or one
// line each from stdin with --pin-stdin. It never keeps a copy.
type secretReader struct {
	in       io.Reader
	prompt   io.Writer
	useStdin bool
}

// newSecretReader returns a reader for the invocation's settings.
func newSecretReader(in io.Reader, prompt io.Writer, useStdin bool) *secretReader {
	return &secretReader{in: in, prompt: prompt, useStdin: useStdin}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// read asks for one secret, refusing an empty one; the caller clears it.
func (s *secretReader) read(what string) ([]byte, error) {
	b, err := s.readRaw(what)
	if err == nil && len(b) == 0 {
		return nil, fmt.Errorf("no %s was given", what)
	}
	return b, err
}

// readRaw reads one secret from the terminal or stdin.
func (s *secretReader) readRaw(what string) ([]byte, error) {
	if s.useStdin {
		return readLine(s.in, what)
	}
	if !stdinIsTerminal() {
		return nil, usageError{fmt.Errorf("cannot ask for the %s: standard input is not a terminal; use --pin-stdin", what)}
	}
	fmt.Fprintf(s.prompt, "%s: ", what)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(s.prompt)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}

// readNew asks for a new secret twice and returns it when both match.
func (s *secretReader) readNew(what string) ([]byte, error) {
	first, err := s.read(what)
	if err != nil {
		return nil, err
	}
	again, err := s.read(what + " again")
	defer clear(again)
	if err != nil {
		clear(first)
		return nil, err
	}
	if subtle.ConstantTimeCompare(first, again) != 1 {
		clear(first)
		return nil, errors.New("the two entries of the " + what + " differ; nothing was changed")
	}
	return first, nil
}

// readLine reads one line byte by byte, so that no buffer keeps the rest of
// the secret, and strips the line end.
func readLine(in io.Reader, what string) ([]byte, error) {
	out := make([]byte, 0, maxSecretLen)
	var b [1]byte
	for {
		n, err := in.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(out) == maxSecretLen {
				clear(out)
				return nil, fmt.Errorf("%s is longer than %d bytes", what, maxSecretLen)
			}
			out = append(out, b[0])
			continue
		}
		if errors.Is(err, io.EOF) && len(out) > 0 {
			break
		}
		if err != nil {
			clear(out)
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read %s from standard input: no more lines", what)
			}
			return nil, fmt.Errorf("read %s from standard input: %w", what, err)
		}
	}
	clear(b[:])
	if len(out) > 0 && out[len(out)-1] == '\r' {
		out[len(out)-1] = 0
		out = out[:len(out)-1]
	}
	return out, nil
}

// readChosen asks for a secret the person chooses now: twice on the
// terminal to catch a typo, once with --pin-stdin where it was typed out
// already.
func (s *secretReader) readChosen(what string) ([]byte, error) {
	if s.useStdin {
		return s.read(what)
	}
	return s.readNew(what)
}
