// Package units formats quantities for people (byte sizes in progress lines
// and tables), so every front-end prints them the same way.
package units

import "fmt"

// Bytes renders n as "512 B", "1.5 KiB", "20.0 MiB", ...
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// GiB renders n bytes as "18.4 GiB": the one unit GPU memory figures are
// given in, so a fit decision and a refusal compare like with like.
func GiB(n int64) string {
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
