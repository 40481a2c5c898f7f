package secrets

import (
	"context"
	"fmt"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
)

// benchFleet is the benchmark fleet: machines machines, each
// with a generated ssh host key and two secrets of its own (a password
// and a hex token), and three admins.
func benchFleet(b *testing.B, root string, n int) (*model.Fleet, []*age.X25519Identity) {
	var ids []*age.X25519Identity
	var admins []string
	for range 3 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
		admins = append(admins, id.Recipient().String())
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("m%04d", i)
	}
	ms := machines(names...)
	for _, m := range ms {
		m.HostKeySecret = "ssh-host-key"
	}
	return mkFleet(root, admins, ms,
		mkSecret("ssh-host-key", false, names, mkGen(KindSSH, nil)),
		mkSecret("db-password", false, names, mkGen(KindPassword, nil)),
		mkSecret("api-token", false, names, mkGen(KindHex, nil)),
	), ids
}

// BenchmarkFleetSecrets generates and encrypts the secrets of a
// 1,000-machine fleet, then checks them. Check is given no identity (it
// takes none): it reads headers and hashes, and cannot decrypt.
// generate-ms and check-ms are the two times.
func BenchmarkFleetSecrets(b *testing.B) {
	const n = 1000
	var genTotal, checkTotal time.Duration
	runs := 0
	for b.Loop() {
		b.StopTimer()
		root := b.TempDir()
		f, _ := benchFleet(b, root, n)
		st := &Store{Root: root}
		b.StartTimer()

		start := time.Now()
		rep, err := GenerateMissing(context.Background(), f, st, Options{})
		genTotal += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Generated) != 4*n {
			b.Fatalf("generated %d files, want %d", len(rep.Generated), 4*n)
		}

		start = time.Now()
		hostKeys, err := st.HostKeys(f)
		if err != nil {
			b.Fatal(err)
		}
		check, err := st.Check(f, hostKeys)
		checkTotal += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if !check.OK() || len(hostKeys) != n {
			b.Fatalf("check: %d host keys, %+v", len(hostKeys), check)
		}
		runs++
	}
	b.ReportMetric(float64(genTotal.Milliseconds())/float64(runs), "generate-ms")
	b.ReportMetric(float64(checkTotal.Milliseconds())/float64(runs), "check-ms")
}
