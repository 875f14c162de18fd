// Command jitctl is the jit command line. Placeholder until the jitd issue lands.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "jitctl: not built yet")
	os.Exit(1)
}
