package models

import "sort"

func sortByCreated(ms []Model) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].CreatedAt.Equal(ms[j].CreatedAt) {
			return ms[i].ID < ms[j].ID
		}
		return ms[i].CreatedAt.Before(ms[j].CreatedAt)
	})
}
