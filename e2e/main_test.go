// Package e2e holds jit's end-to-end tests: real sudo, sshd, PAM and journald,
// run inside the sandbox (see package sandbox) so that the host never changes.
package e2e

import (
	"testing"

	"github.com/jitpam/jit/sandbox"
)

func TestMain(m *testing.M) { sandbox.Main(m) }
