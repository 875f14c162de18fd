// Command jitd is the jit daemon. Placeholder until the jitd issue lands.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "jitd: not built yet")
	os.Exit(1)
}
