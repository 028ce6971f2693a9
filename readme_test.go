package smarthost_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readmeBlocks returns the fenced blocks of README.md, with their info
// strings ("go", or "" for commands).
func readmeBlocks(t *testing.T) (info, body []string) {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	in := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in, cur = true, nil
			info = append(info, strings.TrimPrefix(line, "```"))
		case in && line == "```":
			in = false
			body = append(body, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	if in {
		t.Fatal("README.md: a fenced block is not closed")
	}
	return info, body
}

// TestREADMECommands runs the commands of the first block of README.md as
// written, from the module's root: the demo must exit 0 and say that every
// check passed. "go test ./..." is checked to be there, not run: this
// test is part of it.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo")
	}
	t.Parallel()
	info, body := readmeBlocks(t)
	if len(body) == 0 || info[0] != "" {
		t.Fatal("README.md does not begin with a block of commands")
	}
	cmds := strings.Split(body[0], "\n")
	if want := []string{"go run ./examples/demo", "go test ./..."}; !slices.Equal(cmds, want) {
		t.Fatalf("the first block of README.md is %q, want %q", cmds, want)
	}
	for _, line := range cmds {
		if line == "go test ./..." {
			continue
		}
		args := strings.Fields(line)
		cmd := exec.Command(args[0], args[1:]...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s\n%s", line, err, stdout.String(), stderr.String())
		}
		if !strings.HasSuffix(stdout.String(), "\nevery check passed\n") || stderr.Len() != 0 {
			t.Errorf("%s: stdout ends %q; stderr %q", line, tail(stdout.String(), 200), stderr.String())
		}
	}
}

// TestREADMESnippets keeps the Go snippets of README.md honest: each is the
// body of an example of this package (which go test runs and whose output
// it checks), and each example of the tour is in README.md.
func TestREADMESnippets(t *testing.T) {
	t.Parallel()
	examples := exampleBodies(t)
	info, body := readmeBlocks(t)
	shown := map[string]bool{}
	for i, b := range body {
		if info[i] != "go" {
			continue
		}
		found := ""
		for name, eb := range examples {
			if eb == b {
				found = name
			}
		}
		if found == "" {
			t.Errorf("README.md: this snippet is the body of no example of the package:\n%s", b)
		}
		shown[found] = true
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "tour_example_test.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && strings.HasPrefix(fn.Name.Name, "Example") && !shown[fn.Name.Name] {
			t.Errorf("README.md does not show %s", fn.Name.Name)
		}
	}
}

// exampleBodies returns the bodies of the examples of this package's test
// files, by name: the source between the braces, without the Output
// comment, one tab less indented.
func exampleBodies(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]string{}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || !strings.HasPrefix(fn.Name.Name, "Example") || fn.Body == nil {
				continue
			}
			text := string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
			if i := strings.Index(text, "\t// Output:"); i >= 0 {
				text = text[:i]
			}
			var lines []string
			for line := range strings.Lines(strings.Trim(text, "\n")) {
				lines = append(lines, strings.TrimPrefix(strings.TrimRight(line, "\n"), "\t"))
			}
			bodies[fn.Name.Name] = strings.TrimRight(strings.Join(lines, "\n"), "\n\t ")
		}
	}
	return bodies
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
