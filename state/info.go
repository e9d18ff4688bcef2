package state

import "time"

// Info describes an open store for diagnostics (aima doctor).
type Info struct {
	Backend string `json:"backend" jsonschema:"bolt, memory, gokv or kubernetes"`
	Path    string `json:"path,omitempty" jsonschema:"the store file (kubernetes: the namespace and resource holding the records)"`
	// Created is set when the store file did not exist at open: the store
	// began empty, which after a lost file is worth shouting about.
	Created     bool       `json:"created,omitempty" jsonschema:"the store file did not exist when the daemon opened it: it began empty"`
	Backup      string     `json:"backup,omitempty" jsonschema:"the backup copy kept next to the store file"`
	BackupAt    *time.Time `json:"backup_at,omitempty" jsonschema:"when this daemon last wrote the backup"`
	BackupError string     `json:"backup_error,omitempty" jsonschema:"why the last backup failed"`
}

// Describer is a store that describes itself (backends outside this
// package, such as state/kubestore).
type Describer interface {
	Describe() Info
}

// Describe returns what is known about s: for bolt, its file and backup.
func Describe(s Store) Info {
	switch st := s.(type) {
	case Describer:
		return st.Describe()
	case *boltStore:
		info := Info{Backend: BackendBolt, Path: st.path, Created: st.created, Backup: BackupPath(st.path)}
		at, err := st.backups.status()
		if !at.IsZero() {
			info.BackupAt = &at
		}
		if err != nil {
			info.BackupError = err.Error()
		}
		return info
	case *memoryStore:
		return Info{Backend: BackendMemory}
	}
	return Info{Backend: "gokv"}
}
