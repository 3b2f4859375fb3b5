// Package elk holds the log pipeline's configuration files and exposes
// those that elk-setup applies: the Elasticsearch lifecycle policy and
// index template of the mymonit-logs data stream, and the Kibana saved
// objects (data view, saved searches, the audit dashboard). The Logstash
// pipeline and settings are mounted into Logstash as files; Pipeline returns
// the pipeline for the checks that keep it consistent with the services.
package elk

import (
	_ "embed" // the configuration files
	"slices"
)

// Names of what elk-setup creates in Elasticsearch and Kibana.
const (
	// DataStream is the data stream Logstash writes every event to.
	DataStream = "mymonit-logs"
	// PolicyName is the index lifecycle policy of DataStream.
	PolicyName = "mymonit-logs"
	// TemplateName is the index template that makes DataStream a data
	// stream with ECS mappings.
	TemplateName = "mymonit-logs"
	// DataViewID is the id of the Kibana data view over DataStream.
	DataViewID = "mymonit-logs"
	// DashboardID is the id of the Kibana audit dashboard.
	DashboardID = "mymonit-audit"
	// ServicesPort is the Logstash tcp (json_lines) port the services ship
	// to (MYMONIT_LOGSTASH_ADDR=logstash:5000).
	ServicesPort = 5000
	// BeatsPort is the Logstash beats port Filebeat ships to.
	BeatsPort = 5044
)

// The files, embedded at build time. The accessors return copies, so that
// no caller can change what another one reads.
var (
	//go:embed elasticsearch/ilm-policy.json
	policy []byte
	//go:embed elasticsearch/index-template.json
	template []byte
	//go:embed kibana/saved-objects.ndjson
	savedObjects []byte
	//go:embed logstash/pipeline/mymonit.conf
	pipeline []byte
	//go:embed logstash/logstash.yml
	settings []byte
)

// Policy returns the body of PUT _ilm/policy/<PolicyName>: hot with
// rollover (1 day or 10 GB per primary shard), delete 30 days after
// rollover.
func Policy() []byte { return slices.Clone(policy) }

// Template returns the body of PUT _index_template/<TemplateName>.
func Template() []byte { return slices.Clone(template) }

// SavedObjects returns the Kibana saved objects in the NDJSON format of
// POST /api/saved_objects/_import.
func SavedObjects() []byte { return slices.Clone(savedObjects) }

// Pipeline returns the Logstash pipeline (logstash/pipeline/mymonit.conf).
func Pipeline() []byte { return slices.Clone(pipeline) }

// Settings returns the Logstash settings (logstash/logstash.yml).
func Settings() []byte { return slices.Clone(settings) }
