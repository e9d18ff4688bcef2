package kubernetes

import (
	"strings"
	"testing"
	"time"

	"aima/runtime"
)

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+100)
	in := "2026-01-02T03:04:05.123456789Z first\n" +
		"2026-01-02T03:04:06Z \n" +
		"2026-01-02T03:04:07Z " + long + "\n" +
		"no timestamp here\r\n" +
		"2026-01-02T03:04:08Z last without newline"
	var got []runtime.LogLine
	waits := 0
	err := readLines(strings.NewReader(in), true, func() { waits++ }, func(l runtime.LogLine) error {
		got = append(got, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d lines; want 5", len(got))
	}
	if got[0].Text != "first" || !got[0].Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)) || got[0].Stream != "stdout" {
		t.Errorf("line 1: %+v", got[0])
	}
	if got[1].Text != "" || got[1].Time.IsZero() {
		t.Errorf("an empty line: %+v", got[1])
	}
	if n := len(got[2].Text); n > maxLine || n < maxLine-64 {
		t.Errorf("a long line kept %d bytes; want it cut near %d", n, maxLine)
	}
	if got[3].Text != "no timestamp here" || !got[3].Time.IsZero() {
		t.Errorf("a line without a time: %+v", got[3])
	}
	if got[4].Text != "last without newline" {
		t.Errorf("last line: %+v", got[4])
	}
	if waits == 0 {
		t.Error("OnWait never called")
	}
}
