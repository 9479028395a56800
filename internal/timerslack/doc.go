// Package timerslack widens the timer slack of every thread of a program
// that links it (hwauthd links it) to Slack, from before the Go runtime
// starts its first thread: a C constructor sets it on the program's first
// thread, and Linux gives each new thread the slack of the thread that
// creates it (prctl(2), PR_SET_TIMERSLACK). It needs cgo on Linux; without
// either it does nothing.
//
// Why: the Go runtime's monitor thread (sysmon) sleeps 20 µs at a time
// while any goroutine is in a system call or a C call, and a process that
// was idle wakes it at its first call; it backs off only after 1 ms
// without work for it (golang/go#18236: the tick is hard-coded). With the
// default slack of 50 µs that is a thread wake-up every 70-100 µs for the
// whole of a PC/SC signature (each SCardTransmit is a C call that waits
// for pcscd), on the cores pcscd and the card need: about 4 of the
// daemon's 20-28 context switches per signature. With Slack (1 ms) the
// monitor wakes about once a millisecond. The cost: the daemon's timers
// (request deadlines, the card's idle release, the server's sweeper) may
// fire up to Slack late, and a thread about to steal a goroutine that
// another thread is about to run waits up to Slack instead of 3 µs (the
// other thread runs it meanwhile). docs/performance.md has the
// measurements.
package timerslack
