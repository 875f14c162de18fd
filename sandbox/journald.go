package sandbox

// Journald returns the sandbox's systemd-journald process (tests of what
// happens when journald goes away stop it), or nil.
func (sb *Sandbox) Journald() *Process {
	for _, p := range sb.procs {
		if p.Name == "journald" {
			return p
		}
	}
	return nil
}
