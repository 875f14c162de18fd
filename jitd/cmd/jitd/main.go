// Command jitd is the jit daemon: it owns the grants, decides, expires,
// and audits. sudo (jit_sudo.so), PAM (pam_jit.so) and jitctl reach it over
// a Unix socket; the kernel tells it who is calling.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
	// Windows name IANA zones; a host without zoneinfo must still decide.
	_ "time/tzdata"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"

	"github.com/jitpam/jit/jitd/auditlog"
	"github.com/jitpam/jit/jitd/policy"
	"github.com/jitpam/jit/jitd/server"
	"github.com/jitpam/jit/jitd/spool"
	"github.com/jitpam/jit/jitd/store"
)

// version is set at build time (-ldflags -X main.version=…).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type options struct {
	config      string
	socket      string
	stateDir    string
	checkConfig bool
	logLevel    string
	logJSON     bool
	runtimeDir  string
	spoolSlots  int
}

// defaultRuntimeDir is systemd's RuntimeDirectory= for the unit, or
// /run/jitd.
func defaultRuntimeDir() string {
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" && filepath.IsAbs(d) {
		return d
	}
	return "/run/jitd"
}

func run(args []string, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("jitd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", policy.DefaultPath, "policy file")
	fs.StringVar(&o.socket, "socket", "", "Unix socket to listen on (overrides the policy file)")
	fs.StringVar(&o.stateDir, "state", "", "state directory (overrides the policy file)")
	fs.StringVar(&o.runtimeDir, "runtime-dir", defaultRuntimeDir(), "where session registrations and ends wait for their commit: root-only, emptied at boot")
	fs.IntVar(&o.spoolSlots, "recording-spool", 8, "files of 2 MiB kept allocated in RUNTIME-DIR/spool for jit_io's recording chunks (0: none)")
	fs.BoolVar(&o.checkConfig, "check-config", false, "validate the policy file and exit")
	fs.StringVar(&o.logLevel, "log-level", "info", "trace, debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jitd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintln(os.Stdout, "jitd", version)
		return 0
	}
	if o.spoolSlots < 0 || o.spoolSlots > spool.MaxSlots {
		fmt.Fprintf(stderr, "jitd: -recording-spool %d: want 0 to %d files\n", o.spoolSlots, spool.MaxSlots)
		return 2
	}
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(stderr, "jitd: unknown -log-level %q (trace, debug, info, warn, error)\n", o.logLevel)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name: "jitd", Level: level, Output: stderr, JSONFormat: o.logJSON,
		// journald reads the level from the line's prefix; the time it adds.
		DisableTime: os.Getenv("JOURNAL_STREAM") != "",
	})

	pol, err := loadPolicy(o.config, log)
	if err != nil {
		fmt.Fprintf(stderr, "jitd: %v\n", err)
		return 1
	}
	if o.checkConfig {
		fmt.Fprintf(os.Stdout, "jitd: %s is valid\n", describePolicySource(o.config))
		return 0
	}
	if o.socket != "" {
		pol.Socket = o.socket
	}
	if o.stateDir != "" {
		pol.StateDir = o.stateDir
	}
	if err := serve(o, pol, log); err != nil {
		log.Error("jitd stopped", "error", err)
		return 1
	}
	return 0
}

// loadPolicy reads the policy file; a missing file means built-in defaults
// (root the only approver), so `jitd -socket … -state …` runs with nothing else.
func loadPolicy(path string, log hclog.Logger) (*policy.Policy, error) {
	p, err := policy.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("no policy file; using built-in defaults (root is the only approver)", "path", path)
		return policy.Default(), nil
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func describePolicySource(path string) string {
	if _, err := os.Stat(path); err != nil {
		return "no policy file at " + path + " (built-in defaults)"
	}
	return path
}

func serve(o options, pol *policy.Policy, log hclog.Logger) error {
	sink := auditlog.New(log.Named("audit"))
	if !auditlog.Enabled() {
		log.Warn("no journald socket: audit events go only to the bbolt chain")
	}
	st, err := store.Open(pol.StateDir, store.Options{OnAudit: server.OnAudit(sink), RuntimeDir: o.runtimeDir})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("another jitd is using %s: %w", pol.StateDir, err)
		}
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the state database", "error", err)
		}
	}()
	if replayed, unreadable := st.SessionRecovery(); replayed+unreadable > 0 {
		log.Warn("committed session changes a stopped jitd left pending", "changes", replayed, "unreadable_lines", unreadable, "runtime_dir", o.runtimeDir)
	}

	srv, err := server.New(server.Config{
		Store: st, Policy: pol, PolicyFile: o.config, Socket: pol.Socket, StateDir: pol.StateDir,
		Log: log, Audit: sink, Version: version,
	})
	if err != nil {
		return err
	}
	ln, activated, err := listen(pol.Socket)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan struct{})
	go func() {
		srv.Run(ctx)
		close(runDone)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, ln) }()

	sink.Record(store.AuditRecord{Time: time.Now(), Event: auditlog.EventStarted, Actor: "jitd",
		Fields: map[string]string{"version": version, "socket": pol.Socket, "state_dir": pol.StateDir}})
	log.Info("jitd ready", "socket", pol.Socket, "socket_activated", activated, "state", st.Path(), "version", version)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	go watchdog(ctx, log)
	if o.spoolSlots > 0 {
		dir := filepath.Join(o.runtimeDir, "spool")
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && srv.Policy().Recording.Enabled && !spool.HugePages(mi, dir) {
			log.Warn("the recording spool is not on a tmpfs with huge pages, so recorded commands cost more (see run-jitd-spool.mount in jitd(8))", "dir", dir)
		}
		sp := &spool.Spool{Dir: dir, Slots: o.spoolSlots,
			Wanted: func() bool { return srv.Policy().Recording.Enabled }}
		go sp.Run(ctx, func(err error) { log.Warn("recording spool", "error", err) })
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// A closed socket reader must not kill jitd; errors from writes are handled.
	signal.Ignore(syscall.SIGPIPE)
	for {
		select {
		case err := <-serveErr:
			cancel()
			<-runDone
			return fmt.Errorf("serving %s: %w", pol.Socket, err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(o.config, srv, sink, log)
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
			cancel()
			if err := <-serveErr; err != nil {
				log.Error("shutdown", "error", err)
			}
			<-runDone
			if !activated {
				os.Remove(pol.Socket)
			}
			sink.Record(store.AuditRecord{Time: time.Now(), Event: auditlog.EventStopped, Actor: "jitd",
				Fields: map[string]string{"signal": sig.String()}})
			return nil
		}
	}
}

// reload applies a changed policy file; a bad file keeps the old policy.
func reload(path string, srv *server.Server, sink *auditlog.Sink, log hclog.Logger) {
	p, err := loadPolicy(path, log)
	if err != nil {
		log.Error("policy reload failed; keeping the previous policy", "path", path, "error", err)
		sink.Record(store.AuditRecord{Time: time.Now(), Event: auditlog.EventPolicyRejected, Actor: "jitd", Reason: err.Error()})
		return
	}
	old := srv.Policy()
	// Where to listen and keep state cannot change under a running daemon.
	p.Socket, p.StateDir = old.Socket, old.StateDir
	if err := srv.SetPolicy(p); err != nil {
		log.Error("policy reload failed; keeping the previous policy", "error", err)
		_ = srv.SetPolicy(old)
		return
	}
	log.Info("policy reloaded", "path", path)
	sink.Record(store.AuditRecord{Time: time.Now(), Event: auditlog.EventPolicyLoaded, Actor: "jitd", Fields: map[string]string{"path": path}})
}

// listen takes the socket systemd passed, or creates it: mode 0666 so that
// every local user can reach jitd (authorization is by peer uid, not by
// who can connect).
func listen(path string) (net.Listener, bool, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	for _, ln := range lns {
		if ln != nil {
			return ln, true, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, false, fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
		}
		// A live jitd would answer; a stale socket from a crash would not.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, false, fmt.Errorf("another jitd is listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, false, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	old := syscall.Umask(0o111)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, false, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, false, nil
}

// watchdog pings systemd at half the WatchdogSec interval while jitd runs.
func watchdog(ctx context.Context, log hclog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); err != nil {
				log.Warn("watchdog ping failed", "error", err)
			}
		}
	}
}
