// Command pam_jit_core.so is the Go core that pam_jit.so loads (built with
// -buildmode=c-shared). Placeholder until the PAM issue lands.
package main

import "C"

func main() {}
