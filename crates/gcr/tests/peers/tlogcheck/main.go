// Command tlogcheck is the audit tests' independent verifier: Go's own
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog (Debian's
// golang-golang-x-mod-dev, built offline in GOPATH mode) check what gcr's ledger
// writes, and produce proofs for gcr to check.
//
//	tlogcheck note VKEY NOTE                 verify a signed checkpoint; print origin, size, root (base64)
//	tlogcheck inclusion VKEY PROOF LEAFHEX   check a c2sp.org/tlog-proof@v1 text for the leaf
//	tlogcheck consistency VKEY NOTE CONS     check `gcr audit consistency` output (new root = NOTE's when sizes match)
//	tlogcheck prove VKEY NOTE LEAVES INDEX   build the tree from LEAVES (hex leaf hashes, one a line),
//	                                         check it against NOTE, print a tlog-proof of INDEX
//
// Any failure prints one line on stderr and exits 1.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const proofHeader = "c2sp.org/tlog-proof@v1"

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

func read(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	return b
}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// open verifies a signed checkpoint note with the verifier key and parses its body.
func open(vkey string, msg []byte) checkpoint {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		die("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		die("checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		die("checkpoint body: want origin, size, root: %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		die("checkpoint size %q", lines[1])
	}
	root := parseHash(lines[2])
	if lines[0] != v.Name() {
		die("checkpoint origin %q is not the key's name %q", lines[0], v.Name())
	}
	return checkpoint{lines[0], size, root}
}

func parseHash(s string) tlog.Hash {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		die("not a base64 hash: %q", s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

func parseHex(s string) tlog.Hash {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != tlog.HashSize {
		die("not a hex hash: %q", s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

// parseProof reads the c2sp.org/tlog-proof@v1 text: header, optional extra, index,
// hashes, an empty line, then the checkpoint note.
func parseProof(text []byte) (int64, tlog.RecordProof, []byte) {
	i := bytes.Index(text, []byte("\n\n"))
	if i < 0 {
		die("proof: no empty line before the checkpoint")
	}
	lines := strings.Split(string(text[:i]), "\n")
	if lines[0] != proofHeader {
		die("proof: first line %q", lines[0])
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		die("proof: no index line")
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[0], "index "), 10, 64)
	if err != nil {
		die("proof: bad index %q", lines[0])
	}
	var p tlog.RecordProof
	for _, l := range lines[1:] {
		p = append(p, parseHash(l))
	}
	return index, p, text[i+2:]
}

type memHashes []tlog.Hash

func (m memHashes) ReadHashes(ids []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ids))
	for i, id := range ids {
		if id < 0 || id >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not stored", id)
		}
		out[i] = m[id]
	}
	return out, nil
}

func main() {
	a := os.Args[1:]
	if len(a) < 1 {
		die("usage: see the source")
	}
	switch {
	case a[0] == "note" && len(a) == 3:
		c := open(string(read(a[1])), read(a[2]))
		fmt.Printf("%s\n%d\n%s\n", c.origin, c.size, base64.StdEncoding.EncodeToString(c.root[:]))
	case a[0] == "inclusion" && len(a) == 4:
		index, proof, msg := parseProof(read(a[2]))
		c := open(string(read(a[1])), msg)
		if err := tlog.CheckRecord(proof, c.size, c.root, index, parseHex(a[3])); err != nil {
			die("inclusion of %d in %d: %v", index, c.size, err)
		}
		fmt.Printf("ok inclusion %d in %d\n", index, c.size)
	case a[0] == "consistency" && len(a) == 4:
		c := open(string(read(a[1])), read(a[2]))
		lines := strings.Split(strings.TrimSpace(string(read(a[3]))), "\n")
		var sizes [2]int64
		var roots [2]tlog.Hash
		for i, want := range []string{"old", "new"} {
			f := strings.Fields(lines[i])
			if len(f) != 3 || f[0] != want {
				die("consistency: line %d %q", i+1, lines[i])
			}
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				die("consistency: size %q", f[1])
			}
			sizes[i], roots[i] = n, parseHash(f[2])
		}
		if sizes[1] == c.size && roots[1] != c.root {
			die("consistency: the new root is not the checkpoint's")
		}
		var proof tlog.TreeProof
		for _, l := range lines[2:] {
			proof = append(proof, parseHash(l))
		}
		if err := tlog.CheckTree(proof, sizes[1], roots[1], sizes[0], roots[0]); err != nil {
			die("consistency %d -> %d: %v", sizes[0], sizes[1], err)
		}
		fmt.Printf("ok consistency %d -> %d\n", sizes[0], sizes[1])
	case a[0] == "prove" && len(a) == 5:
		msg := read(a[2])
		c := open(string(read(a[1])), msg)
		var stored memHashes
		var n int64
		for _, l := range strings.Split(string(read(a[3])), "\n") {
			if strings.TrimSpace(l) == "" {
				continue
			}
			hs, err := tlog.StoredHashesForRecordHash(n, parseHex(l), stored)
			if err != nil {
				die("stored hashes of %d: %v", n, err)
			}
			stored = append(stored, hs...)
			n++
		}
		if n < c.size {
			die("%d leaves for a checkpoint of %d", n, c.size)
		}
		root, err := tlog.TreeHash(c.size, stored)
		if err != nil || root != c.root {
			die("the leaves do not make the checkpoint's root (%v)", err)
		}
		index, err := strconv.ParseInt(a[4], 10, 64)
		if err != nil {
			die("index %q", a[4])
		}
		proof, err := tlog.ProveRecord(c.size, index, stored)
		if err != nil {
			die("prove %d in %d: %v", index, c.size, err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s\nindex %d\n", proofHeader, index)
		for _, h := range proof {
			b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
		}
		b.WriteString("\n")
		os.Stdout.WriteString(b.String())
		os.Stdout.Write(msg)
	default:
		die("usage: see the source")
	}
}
