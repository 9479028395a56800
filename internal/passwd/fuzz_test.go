package passwd

import (
	"bytes"
	"strconv"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"))
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0:::"))
	f.Add([]byte("+::::::\n"))
	f.Add([]byte("a:x:1:1:::\n\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		uids, names, ok := Parse(text)
		if !ok {
			return
		}
		// Every line is an account, read back as the line says; the first
		// account of each uid is its name.
		first := map[uint32]string{}
		n := 0
		for line := range bytes.Lines(text) {
			fields := bytes.Split(bytes.TrimSuffix(line, []byte("\n")), []byte(":"))
			if len(fields) != 7 {
				t.Fatalf("accepted line %q", line)
			}
			uid, err := strconv.ParseUint(string(fields[2]), 10, 32)
			if err != nil || uids[string(fields[0])] != uint32(uid) {
				t.Fatalf("line %q read as uid %d", line, uids[string(fields[0])])
			}
			if _, seen := first[uint32(uid)]; !seen {
				first[uint32(uid)] = string(fields[0])
			}
			n++
		}
		if len(uids) != n || len(names) != len(first) {
			t.Fatalf("%d lines, %d names, %d uids; want %d and %d", n, len(uids), len(names), n, len(first))
		}
		for uid, name := range first {
			if names[uid] != name {
				t.Fatalf("uid %d read as %q, first line says %q", uid, names[uid], name)
			}
		}
	})
}

func FuzzFilesFirst(f *testing.F) {
	f.Add([]byte("passwd: files systemd\n"))
	f.Add([]byte("passwd: files [NOTFOUND=return] ldap\n"))
	f.Fuzz(func(t *testing.T, conf []byte) {
		if !FilesFirst(conf) {
			return
		}
		// A passwd line names files first.
		if !bytes.Contains(bytes.ToLower(conf), []byte("passwd")) || !bytes.Contains(conf, []byte("files")) {
			t.Fatalf("FilesFirst(%q) without a passwd line naming files", conf)
		}
	})
}
