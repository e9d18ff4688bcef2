package config

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// StoreKubernetes keeps the state store in the Kubernetes API server of
// the kubernetes section (one AimaRecord per key in its namespace).
const StoreKubernetes = "kubernetes"

// Cluster is the config file's cluster section: running aima as a
// cluster service, several daemons sharing one store.
type Cluster struct {
	// StoreName tells this deployment's records (store: kubernetes) from
	// another's in the same namespace.
	StoreName string `yaml:"store_name"`
	// LeaderElection elects one leader among the daemons sharing the store.
	LeaderElection LeaderElection `yaml:"leader_election"`
}

// LeaderElection is the cluster section's leader_election: a
// coordination.k8s.io Lease held by the one daemon that runs starts,
// watches, reconcile, idle clocks and restarts; the others wait, not
// Ready, and one of them takes over when the leader stops renewing.
type LeaderElection struct {
	// Enabled turns leader election on (it needs store: kubernetes).
	Enabled bool `yaml:"enabled"`
	// LeaseName is the Lease's name, in the kubernetes namespace.
	LeaseName string `yaml:"lease_name"`
	// LeaseDuration is how long a lease lasts without renewal: a dead
	// leader's successor takes over at most this long (plus retry_period)
	// after its last renewal.
	LeaseDuration Duration `yaml:"lease_duration"`
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leading; runtime writes stop being allowed this long after
	// the last renewal.
	RenewDeadline Duration `yaml:"renew_deadline"`
	// RetryPeriod is how often the lease is renewed, and how often
	// followers try to take it.
	RetryPeriod Duration `yaml:"retry_period"`
	// Identity names this daemon in the lease (default: POD_NAME, else
	// the host name and process id).
	Identity string `yaml:"identity"`
}

func defaultCluster() Cluster {
	return Cluster{StoreName: "aima", LeaderElection: LeaderElection{
		LeaseName: "aima-leader", LeaseDuration: Duration(8 * time.Second),
		RenewDeadline: Duration(5 * time.Second), RetryPeriod: Duration(time.Second),
	}}
}

func (c *Config) validateCluster() error {
	cl := c.Cluster
	if msgs := validation.IsValidLabelValue(cl.StoreName); cl.StoreName == "" || len(msgs) > 0 {
		return fmt.Errorf("cluster.store_name %q: want a label value (letters, digits, -_. up to 63)", cl.StoreName)
	}
	le := cl.LeaderElection
	if !le.Enabled {
		return nil
	}
	if c.Store != StoreKubernetes {
		return fmt.Errorf("cluster.leader_election needs store: kubernetes (the daemons must share their store)")
	}
	if msgs := validation.IsDNS1123Subdomain(le.LeaseName); len(msgs) > 0 {
		return fmt.Errorf("cluster.leader_election.lease_name %q: %s", le.LeaseName, msgs[0])
	}
	if !(le.LeaseDuration > le.RenewDeadline && le.RenewDeadline > le.RetryPeriod && le.RetryPeriod > 0) {
		return fmt.Errorf("cluster.leader_election: want lease_duration > renew_deadline > retry_period > 0")
	}
	return nil
}
