package gpu

// SuggestForTest runs the too-big suggestion for the external tests.
func SuggestForTest(e Estimate, capacity int64, gpus int) Refusal {
	var r Refusal
	suggestTooBig(&r, e, capacity, gpus)
	return r
}
