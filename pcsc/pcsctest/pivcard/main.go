// Command pivcard is an emulated PIV smart card for tests and demos. It
// connects to vsmartcard's vpcd reader driver in pcscd, so that every PC/SC
// client (hwauthd, OpenSC, yubico-piv-tool) sees a card in that reader:
//
//	pivcard --vpcd 127.0.0.1:35963 [--state FILE] [--pin 123456] [--puk 12345678]
//	        [--pin-tries 3] [--slots 9a=p256,9c=p384,9d=rsa2048] [--label NAME] [--control]
//
// With --state the card is loaded from FILE when it exists and saved there
// (PIN and PUK as salted hashes only, mode 0600), so it keeps its keys and
// retry counters across runs. It reconnects when vpcd drops the connection.
// With --control it reads the lines "remove", "insert" and "quit" on stdin
// and answers "ok" or "error: …" on stdout.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hwauthd/hwauthd/pcsc/pcsctest/vicc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// backoff is the wait between attempts to reach vpcd.
const backoff = 200 * time.Millisecond

type config struct {
	vpcd, state, slots string
	control            bool
	opts               pivcard.Options
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pivcard:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("pivcard", flag.ContinueOnError)
	fs.StringVar(&c.vpcd, "vpcd", "", "vpcd reader address HOST:PORT (required)")
	fs.StringVar(&c.state, "state", "", "card state file, loaded when it exists, saved on every change")
	fs.StringVar(&c.opts.PIN, "pin", pivcard.DefaultPIN, "PIN of a new card")
	fs.StringVar(&c.opts.PUK, "puk", pivcard.DefaultPUK, "PUK of a new card")
	fs.IntVar(&c.opts.PINTries, "pin-tries", pivcard.DefaultTries, "PIN tries of a new card")
	fs.IntVar(&c.opts.PUKTries, "puk-tries", pivcard.DefaultTries, "PUK tries of a new card")
	fs.StringVar(&c.slots, "slots", "9a=p256", "keys of a new card, SLOT=ALG[,…] with ALG p256, p384 or rsa2048")
	fs.StringVar(&c.opts.Label, "label", pivcard.DefaultLabel, "label and certificate CN of a new card")
	fs.StringVar(&c.opts.Serial, "serial", "", "FASC-N credential number of a new card, 6 digits (random)")
	fs.BoolVar(&c.control, "control", false, "read remove/insert/quit commands on stdin")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if c.vpcd == "" {
		return config{}, errors.New("--vpcd HOST:PORT is required")
	}
	specs, err := pivcard.ParseSlots(c.slots)
	if err != nil {
		return config{}, err
	}
	c.opts.Slots = specs
	return c, nil
}

// openCard loads the card from the state file or creates it (and saves it
// when a state file is named).
func openCard(c config) (*pivcard.Card, error) {
	if c.state != "" {
		if _, err := os.Stat(c.state); err == nil {
			return pivcard.Load(c.state)
		}
	}
	card, err := pivcard.New(c.opts)
	if err != nil {
		return nil, err
	}
	if c.state != "" {
		if err := card.Save(c.state); err != nil {
			return nil, err
		}
	}
	return card, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	card, err := openCard(cfg)
	if err != nil {
		return err
	}
	slot := vicc.NewSlot(card, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", cfg.vpcd)
	})
	slot.SetReconnect(backoff)
	if err := insertRetry(ctx, slot); err != nil {
		return err
	}
	defer slot.Remove()
	if cfg.control {
		return control(ctx, stdin, stdout, slot)
	}
	<-ctx.Done()
	return nil
}

// insertRetry inserts the card, retrying until vpcd listens or ctx ends.
func insertRetry(ctx context.Context, slot *vicc.Slot) error {
	t := time.NewTicker(backoff)
	defer t.Stop()
	for {
		err := slot.Insert(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to vpcd: %w", err)
		case <-t.C:
		}
	}
}

// control serves the stdin protocol until "quit", end of input or ctx.
func control(ctx context.Context, stdin io.Reader, stdout io.Writer, slot *vicc.Slot) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			quit, err := command(ctx, strings.TrimSpace(line), slot)
			reply(stdout, err)
			if quit {
				return nil
			}
		}
	}
}

// command runs one control command.
func command(ctx context.Context, cmd string, slot *vicc.Slot) (quit bool, err error) {
	switch cmd {
	case "remove":
		if !slot.Inserted() {
			return false, errors.New("card not inserted")
		}
		return false, slot.Remove()
	case "insert":
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return false, slot.Insert(ictx)
	case "quit":
		return true, nil
	default:
		return false, fmt.Errorf("unknown command %q (remove, insert, quit)", cmd)
	}
}

func reply(w io.Writer, err error) {
	if err != nil {
		fmt.Fprintf(w, "error: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}
