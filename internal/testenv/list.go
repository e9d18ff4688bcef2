package testenv

// List is the shape of every list operation's output (-o json).
type List[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}
