package apitest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// DocRoute is one row of the route table in docs/api.md.
type DocRoute struct {
	Method, Path, Who, What string
}

// DocumentedRoutes parses the route table rows of docs/api.md
// ("| GET | /v1/status | anyone | … |"), keyed by "METHOD /path" as in a
// server.Route (Method + " " + Pattern).
func DocumentedRoutes(path string) (map[string]DocRoute, error) {
	rows, err := TableRows(path)
	if err != nil {
		return nil, err
	}
	out := map[string]DocRoute{}
	for _, r := range rows {
		if len(r) == 4 && isMethod(r[0]) && strings.HasPrefix(r[1], "/v1/") {
			out[r[0]+" "+r[1]] = DocRoute{Method: r[0], Path: r[1], Who: r[2], What: r[3]}
		}
	}
	return out, nil
}

// TableRows returns the cells of every Markdown table row in the file,
// trimmed of spaces and backquotes.
func TableRows(path string) ([][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") || len(line) < 2 {
			continue
		}
		cells := strings.Split(line[1:len(line)-1], "|")
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		rows = append(rows, cells)
	}
	return rows, sc.Err()
}

// isMethod reports whether s is an HTTP method name.
func isMethod(s string) bool {
	switch s {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD":
		return true
	}
	return false
}

// AccessMatrix parses the access matrix of docs/api.md: the table whose
// header row starts with "route", one column per kind of caller, each row a
// "METHOD /path" and yes or no per caller. It returns the callers in column
// order and, per route, whether each caller may call it.
func AccessMatrix(path string) (callers []string, matrix map[string]map[string]bool, err error) {
	rows, err := TableRows(path)
	if err != nil {
		return nil, nil, err
	}
	matrix = map[string]map[string]bool{}
	for _, r := range rows {
		switch {
		case len(r) > 1 && r[0] == "route":
			if callers != nil {
				return nil, nil, fmt.Errorf("%s: two access matrices", path)
			}
			callers = r[1:]
		case callers != nil && len(r) == len(callers)+1 && strings.Contains(r[0], " /v1/"):
			row := map[string]bool{}
			for i, cell := range r[1:] {
				switch cell {
				case "yes":
					row[callers[i]] = true
				case "no":
					row[callers[i]] = false
				default:
					return nil, nil, fmt.Errorf("%s: access matrix, %s, %s: %q is neither yes nor no", path, r[0], callers[i], cell)
				}
			}
			if _, dup := matrix[r[0]]; dup {
				return nil, nil, fmt.Errorf("%s: access matrix lists %s twice", path, r[0])
			}
			matrix[r[0]] = row
		}
	}
	if callers == nil {
		return nil, nil, fmt.Errorf("%s: no access matrix (a table whose header starts with \"route\")", path)
	}
	return callers, matrix, nil
}
