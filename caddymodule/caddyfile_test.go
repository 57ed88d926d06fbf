package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/edgelicense/caddy-license-api/store/sqlite"
)

// The golden files in testdata/caddyfile_adapt hold a Caddyfile, a line of
// ten dashes, and the JSON it must adapt to. Run
//
//	go test ./caddymodule/ -run CaddyfileAdapt -update
//
// to rewrite the JSON halves from the adapter's output, then review the diff:
// the goldens are meant to be written by hand from what the syntax means.
func init() {
	// Registered here, not as a package variable, so that another test file
	// of this package may define the same flag without a panic.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/caddyfile_adapt")
	}
}

func caddyfileUpdateGoldens() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

const caddyfileGoldenSeparator = "----------"

var caddyfileGoldenSplit = regexp.MustCompile(`(?m)^` + caddyfileGoldenSeparator + `[ \t]*\r?\n?`)

// adaptCaddyfile adapts a Caddyfile to JSON, failing on warnings (an
// unformatted golden Caddyfile is a mistake in the golden).
func adaptCaddyfile(t *testing.T, caddyfile string) ([]byte, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("no caddyfile adapter registered")
	}
	out, warnings, err := adapter.Adapt([]byte(caddyfile), nil)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		t.Errorf("adapter warning: %s", w.String())
	}
	return out, nil
}

func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile_adapt", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata/caddyfile_adapt")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
			parts := caddyfileGoldenSplit.Split(string(data), -1)
			if len(parts) != 2 {
				t.Fatalf("want a Caddyfile, a %q line and JSON; found %d parts", caddyfileGoldenSeparator, len(parts))
			}
			caddyfile := strings.TrimSpace(parts[0]) + "\n"
			expected := strings.TrimSpace(parts[1])

			if caddyfileUpdateGoldens() {
				got, err := adaptCaddyfile(t, caddyfile)
				if err != nil {
					t.Fatalf("adapting: %v", err)
				}
				var indented bytes.Buffer
				if err := json.Indent(&indented, got, "", "\t"); err != nil {
					t.Fatalf("adapter output is not JSON: %v\n%s", err, got)
				}
				golden := caddyfile + caddyfileGoldenSeparator + "\n" + indented.String() + "\n"
				if err := os.WriteFile(file, []byte(golden), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, err := adaptCaddyfile(t, caddyfile); err != nil { // fails on warnings, which CompareAdapt only logs
				t.Fatalf("adapting: %v", err)
			}
			if !caddytest.CompareAdapt(t, file, caddyfile, "caddyfile", expected) {
				t.Error("adapted JSON differs from the golden (diff above)")
			}
		})
	}
}

// TestCaddyfileDirectiveOrder checks, independently of the goldens (which
// -update could rewrite wrongly), that license_api sorts before respond and
// reverse_proxy whatever order they are written in, and that its argument is
// the prefix rather than a path matcher.
func TestCaddyfileDirectiveOrder(t *testing.T) {
	const caddyfile = `:8080 {
	reverse_proxy localhost:9000
	respond /health "ok"
	license_api /api/v4 {
		company_id 7
	}
}
`
	out, err := adaptCaddyfile(t, caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	type handler struct {
		Handler string `json:"handler"`
		Prefix  string `json:"prefix"`
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match  []map[string]json.RawMessage `json:"match"`
						Handle []handler                    `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	srv, ok := cfg.Apps.HTTP.Servers["srv0"]
	if !ok {
		t.Fatalf("no srv0 in %s", out)
	}
	var order []string
	for _, r := range srv.Routes {
		for _, h := range r.Handle {
			order = append(order, h.Handler)
			if h.Handler != "license_api" {
				continue
			}
			if h.Prefix != "/api/v4" {
				t.Errorf("license_api prefix = %q, want /api/v4", h.Prefix)
			}
			if len(r.Match) != 0 {
				t.Errorf("license_api route has matchers %v; want none (the argument is the prefix)", r.Match)
			}
		}
	}
	want := []string{"license_api", "static_response", "reverse_proxy"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("handler order = %v, want %v", order, want)
	}
}

func TestCaddyfileParseErrors(t *testing.T) {
	tests := []struct {
		name string
		// block is the body of license_api's block; args follow the
		// directive name on its line.
		args  string
		block string
		// want are substrings the error must contain (the bad option, and
		// the bad value where there is one).
		want []string
	}{
		{name: "unknown option", block: "bogus 1", want: []string{`unrecognized license_api option "bogus"`}},
		{name: "api_key one arg", block: "api_key onlykey", want: []string{"api_key"}},
		{name: "api_key three args", block: "api_key a b c", want: []string{"api_key"}},
		{name: "api_key no args", block: "api_key", want: []string{"api_key"}},
		{name: "company_id not int", block: "company_id abc", want: []string{"company_id", `"abc"`}},
		{name: "company_id float", block: "company_id 1.5", want: []string{"company_id", `"1.5"`}},
		{name: "company_id negative", block: "company_id -1", want: []string{"company_id", `"-1"`}},
		{name: "company_id overflow", block: "company_id 9223372036854775808", want: []string{"company_id"}},
		{name: "company_id no arg", block: "company_id", want: []string{"company_id"}},
		{name: "company_id two args", block: "company_id 1 2", want: []string{"'2'"}},
		{name: "date_tolerance not duration", block: "date_tolerance soon", want: []string{"date_tolerance", `"soon"`}},
		{name: "date_tolerance zero", block: "date_tolerance 0", want: []string{"date_tolerance", `"0"`}},
		{name: "date_tolerance negative", block: "date_tolerance -5m", want: []string{"date_tolerance", `"-5m"`}},
		{name: "date_tolerance no arg", block: "date_tolerance", want: []string{"date_tolerance"}},
		{name: "store unknown module", block: "store redis localhost:6379", want: []string{"license_api.stores.redis"}},
		{name: "store no module", block: "store", want: []string{"store"}},
		{name: "store sqlite with block", block: "store sqlite /a.db {\n\t\t\tjournal wal\n\t\t}", want: []string{"sqlite"}},
		{name: "store sqlite two paths", block: "store sqlite /a.db /b.db", want: []string{"/b.db"}},
		{name: "cache unknown sub-option", block: "cache {\n\t\t\tsize 10\n\t\t}", want: []string{`unrecognized cache option "size"`}},
		{name: "cache with argument", block: "cache big", want: []string{"big"}},
		{name: "max_entries zero", block: "cache {\n\t\t\tmax_entries 0\n\t\t}", want: []string{"max_entries", `"0"`}},
		{name: "max_entries negative", block: "cache {\n\t\t\tmax_entries -3\n\t\t}", want: []string{"max_entries", `"-3"`}},
		{name: "max_entries not int", block: "cache {\n\t\t\tmax_entries lots\n\t\t}", want: []string{"max_entries", `"lots"`}},
		{name: "ttl zero", block: "cache {\n\t\t\tttl 0s\n\t\t}", want: []string{"ttl", `"0s"`}},
		{name: "ttl not duration", block: "cache {\n\t\t\tttl forever\n\t\t}", want: []string{"ttl", `"forever"`}},
		{name: "warm not on or off", block: "cache {\n\t\t\twarm yes\n\t\t}", want: []string{"warm", `"yes"`}},
		{name: "warm without arg", block: "cache {\n\t\t\twarm\n\t\t}", want: []string{"warm"}},
		{name: "extra argument after prefix", args: "/api/v4 /other", want: []string{"/other"}},
		{name: "signing_key without arg", block: "signing_key", want: []string{"signing_key"}},
		{name: "signing_key two args", block: "signing_key /a.pem /b.pem", want: []string{"/b.pem"}},
		{name: "seed without arg", block: "seed", want: []string{"seed"}},
		{name: "prefix that is a named matcher", args: "@api", want: []string{"prefix", `"@api"`}},
		{name: "relative prefix", args: "api/v4", want: []string{"prefix", `"api/v4"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(":8080 {\n\tlicense_api")
			if tt.args != "" {
				b.WriteString(" " + tt.args)
			}
			if tt.block != "" {
				b.WriteString(" {\n\t\t" + tt.block + "\n\t}")
			}
			b.WriteString("\n}\n")
			caddyfile := b.String()

			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
			if err == nil {
				t.Fatalf("no error adapting\n%s", caddyfile)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
