package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/fleet-nix/fleet/engine"
)

// benchFleet generates a fleet of machines machines, each with 20 of 200
// features and 5 users, as a user would write it: loops inside functions.
func benchFleet(machines int) string {
	return fmt.Sprintf(`fleet(name = "bench", admins = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ admin@example.org"])
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
input("home-manager", url = "github:nix-community/home-manager", follows = {"nixpkgs": "nixpkgs"})
input("agenix", url = "github:ryantm/agenix")

def features():
    for i in range(200):
        feature("f%%d" %% i,
            nixos = {"services.s%%d.enable" %% i: True, "services.s%%d.port" %% i: 1000 + i,
                     "environment.etc.\"f%%d.conf\".text" %% i: "value %%d" %% i},
            home = {"programs.p%%d.enable" %% i: True},
            packages = ["pkg%%d" %% i],
            requires = ["f%%d" %% (i - 1)] if i %% 10 else [])

def users():
    for i in range(5):
        user("u%%d" %% i, uid = 1000 + i, groups = ["wheel"], home = ["f%%d" %% i],
             ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEULM3YKQXjnkoYQmMS2X/ci65qw/4u1Ppln4/b26+S2 u%%d" %% i])

def machines(n):
    for m in range(n):
        machine("m%%d" %% m, system = "x86_64-linux", state_version = "26.05",
            tags = ["bench", "rack%%d" %% (m %% 10)],
            features = ["f%%d" %% ((m + j * 7) %% 200) for j in range(20)],
            users = ["u%%d" %% u for u in range(5)],
            host = hetzner.server(type = "cx43", location = "fsn1", enabled = m %% 2 == 0),
            nixos = {"networking.firewall.allowedTCPPorts": [22, 443]})

features()
users()
machines(%d)
secret("host-key", machines = "all", generate = gen.ssh_keypair(), needed_for = "activation")
`, machines)
}

// BenchmarkEval: issue targets on a 2-core machine are 1,000 machines in
// under 200 ms and 100 MiB, 10,000 in under 2 s, growing linearly.
// heap-MiB is the live heap after evaluation (the model and what it holds).
func BenchmarkEval(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			file := filepath.Join(dir, "fleet.star")
			if err := os.WriteFile(file, []byte(benchFleet(n)), 0o644); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var live uint64
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.StartTimer()
				f, err := engine.Eval(context.Background(), file, engine.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				if len(f.Machines) != n {
					b.Fatalf("got %d machines", len(f.Machines))
				}
				live = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
				runtime.KeepAlive(f)
				b.StartTimer()
			}
			b.ReportMetric(float64(live)/(1<<20), "heap-MiB")
		})
	}
}

// TestBenchFleetEvaluates keeps the benchmark's fleet valid: benchmarks
// do not run in go test, so a change to the validation could otherwise
// break them unnoticed.
func TestBenchFleetEvaluates(t *testing.T) {
	file := filepath.Join(t.TempDir(), "fleet.star")
	if err := os.WriteFile(file, []byte(benchFleet(20)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Eval(context.Background(), file, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Machines) != 20 || len(f.Features) != 200 || len(f.Users) != 5 {
		t.Fatalf("got %d machines, %d features, %d users", len(f.Machines), len(f.Features), len(f.Users))
	}
}
