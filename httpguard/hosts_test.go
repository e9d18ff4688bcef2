package httpguard_test

import (
	"testing"

	"aima/errs"
	"aima/httpguard"
)

func TestCanonicalOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://localhost":        "http://localhost:80",
		"HTTPS://Dash.Example/":   "https://dash.example:443",
		"http://127.0.0.1:5173":   "http://127.0.0.1:5173",
		"http://[::1]:9090":       "http://[::1]:9090",
		"https://dash.example.:8": "https://dash.example:8",
	} {
		if got, err := httpguard.CanonicalOrigin(in); err != nil || got != want {
			t.Errorf("CanonicalOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"null", "", "localhost:9090", "http://", "http://u:p@h", "http://h?x", "ftp://h", "http://h:0", "http://h:x"} {
		if got, err := httpguard.CanonicalOrigin(bad); err == nil {
			t.Errorf("CanonicalOrigin(%q) = %q, want an error", bad, got)
		}
	}
}

// A bad allowed_hosts or allowed_origins entry is refused when the guard is
// built (at daemon start), with the config key as the error's field.
func TestNewRefusesBadHostsAndOrigins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hosts, origins []string
		field          string
	}{
		{hosts: []string{"aima.lan/x"}, field: "allowed_hosts"},
		{hosts: []string{"*"}, field: "allowed_hosts"},
		{hosts: []string{"aima.lan:99999"}, field: "allowed_hosts"},
		{origins: []string{"https://dash.example/app"}, field: "allowed_origins"},
		{origins: []string{"null"}, field: "allowed_origins"},
		{origins: []string{"*"}, field: "allowed_origins"},
		{origins: []string{"file:///x"}, field: "allowed_origins"},
	} {
		_, err := httpguard.New(httpguard.Options{AllowedHosts: tc.hosts, AllowedOrigins: tc.origins})
		if errs.KindOf(err) != errs.InvalidArgument || errs.FieldOf(err) != tc.field {
			t.Errorf("New(hosts %q, origins %q) = %v; want invalid_argument on %s", tc.hosts, tc.origins, err, tc.field)
		}
	}
	if _, err := httpguard.New(httpguard.Options{AllowedHosts: []string{"aima.lan", "box:9090", "[fd00::1]:9090", "10.0.0.5"},
		AllowedOrigins: []string{"https://dash.example", "http://localhost:5173"}}); err != nil {
		t.Errorf("good hosts and origins: %v", err)
	}
}
