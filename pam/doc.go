// Package pam holds hwauthd's PAM integration and the tests that run it in
// a real PAM stack (pamtester and a forking host under pam_wrapper, without
// touching /etc):
//
//   - module/pam_hwauth.c, the service module pam_hwauth.so: C, no Go
//     runtime in the host process (sshd, login, gdm, sudo). For each call it
//     starts the helper with posix_spawn and relays the application's
//     conversation to it over a socket. Its frame parser is
//     module/frame.h, which the tests also compile through cgo
//     (internal/cmodule, under AddressSanitizer) to fuzz it against relay;
//   - relay, the helper's side of that protocol;
//   - signin, the sign-in logic the helper runs (cmd/hwauthd-pam-helper);
//   - hwauth.pam, an example service file.
//
// Build both with `make pam` (the module's hardened flags are in the
// Makefile; PAM_HELPER sets where the module runs the helper from, by default
// /usr/libexec/hwauthd/hwauthd-pam-helper).
package pam
