package packaging_test

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fortifiedOnly are C library functions that a build with _FORTIFY_SOURCE
// replaces by their checking __NAME_chk variants wherever the compiler sees
// them: a binary that imports one unchecked was built without it.
var fortifiedOnly = []string{"printf", "fprintf", "sprintf", "snprintf", "vfprintf", "vsprintf", "vsnprintf", "strcpy", "stpcpy", "strcat"}

// TestHardenedELF unpacks the package and checks every ELF file in it as
// lintian's and Debian's hardening checks do: position independent (PIE, or
// a shared object), full RELRO (PT_GNU_RELRO and BIND_NOW), a stack that is
// not executable, and no unchecked printf- or strcpy-family call.
func TestHardenedELF(t *testing.T) {
	_, deb := buildDeb(t)
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	n := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := elf.Open(path)
		if err != nil {
			return nil // not ELF
		}
		defer f.Close()
		n++
		checkHardened(t, strings.TrimPrefix(path, root), f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("found %d ELF files in the package, want the 4 programs and the PAM module at least", n)
	}
}

func checkHardened(t *testing.T, name string, f *elf.File) {
	t.Helper()
	if f.Type != elf.ET_DYN {
		t.Errorf("%s: ELF type %v, want ET_DYN (PIE or shared object)", name, f.Type)
	}
	relro, stack := false, false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_GNU_RELRO:
			relro = true
		case elf.PT_GNU_STACK:
			stack = true
			if p.Flags&elf.PF_X != 0 {
				t.Errorf("%s: executable stack", name)
			}
		}
	}
	if !relro || !stack {
		t.Errorf("%s: PT_GNU_RELRO %v, PT_GNU_STACK %v; want both", name, relro, stack)
	}
	flags, _ := f.DynValue(elf.DT_FLAGS)
	flags1, _ := f.DynValue(elf.DT_FLAGS_1)
	bindNow := false
	for _, v := range flags {
		bindNow = bindNow || v&uint64(elf.DF_BIND_NOW) != 0
	}
	for _, v := range flags1 {
		bindNow = bindNow || v&uint64(elf.DF_1_NOW) != 0
	}
	if !bindNow {
		t.Errorf("%s: no BIND_NOW (linked without -z now: partial RELRO)", name)
	}
	syms, err := f.ImportedSymbols()
	if err != nil {
		t.Errorf("%s: imported symbols: %v", name, err)
		return
	}
	for _, s := range syms {
		for _, fn := range fortifiedOnly {
			if s.Name == fn {
				t.Errorf("%s: calls %s unchecked (built without _FORTIFY_SOURCE)", name, fn)
			}
		}
	}
}
