// Command jit_sudo.so is the sudo policy and I/O plugin (built with
// -buildmode=c-shared). Placeholder until the sudo plugin issue lands: it
// exports no plugin yet, so sudo refuses to load it.
package main

import "C"

func main() {}
