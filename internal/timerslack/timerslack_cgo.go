//go:build linux && cgo

package timerslack

// #include <sys/prctl.h>
//
// #define HWAUTHD_TIMER_SLACK_NS 1000000
//
// // hwauthd_timer_slack runs when the program is loaded, before the Go
// // runtime creates any thread.
// static void __attribute__((constructor)) hwauthd_timer_slack(void) {
// 	prctl(PR_SET_TIMERSLACK, (unsigned long)HWAUTHD_TIMER_SLACK_NS, 0, 0, 0);
// }
import "C"

import "time"

// Slack is the timer slack of every thread of the program.
const Slack = C.HWAUTHD_TIMER_SLACK_NS * time.Nanosecond
