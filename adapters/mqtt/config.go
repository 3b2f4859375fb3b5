package mqtt

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Config is the bridge's part of the environment (parsed by pkg/config).
type Config struct {
	Broker               string        `env:"MYMONIT_MQTT_BROKER" default:"tcp://127.0.0.1:1883" help:"MQTT broker URL: tcp://host:port, ssl://host:port or ws://host:port/path"`
	ClientID             string        `env:"MYMONIT_MQTT_CLIENT_ID" default:"mymonit-mqttbridge" help:"fixed MQTT client id: the broker keeps the persistent session (subscriptions, unacknowledged QoS 1 messages) under it across restarts; give every bridge process its own"`
	Username             string        `env:"MYMONIT_MQTT_USERNAME" help:"user name for the broker, if it wants one"`
	Password             string        `env:"MYMONIT_MQTT_PASSWORD" secret:"true" help:"password for the broker (prefer MYMONIT_MQTT_PASSWORD_FILE)"`
	Rules                string        `env:"MYMONIT_MQTT_RULES" help:"YAML (or JSON) file of mapping rules, topic filter to experiment and sensor (see mqttbridge -help); required, here or as -rules"`
	KeepAlive            time.Duration `env:"MYMONIT_MQTT_KEEPALIVE" default:"30s" min:"1s" max:"18h" help:"MQTT keep-alive: a silent connection is probed, and dropped without an answer"`
	MaxReconnectInterval time.Duration `env:"MYMONIT_MQTT_MAX_RECONNECT_INTERVAL" default:"30s" min:"100ms" max:"1h" help:"longest wait between reconnection attempts to the broker"`
	MaxPayload           int           `env:"MYMONIT_MQTT_MAX_PAYLOAD_BYTES" default:"1048576" min:"16" max:"4194304" help:"largest payload used; a larger one is rejected (logged, counted, acknowledged)"`
	MaxPending           int           `env:"MYMONIT_MQTT_MAX_PENDING" default:"10000" min:"1" max:"1000000" help:"messages received and not yet acknowledged (waiting for their confirms); when full the bridge stops reading from the broker"`
	AcceptRetained       bool          `env:"MYMONIT_MQTT_ACCEPT_RETAINED" default:"false" help:"use retained messages the broker replays on (re)subscription; off, they are skipped, since the same value would be stored again, at a new time, whenever the payload has no time"`
}

// BindFlags defines flags that override the environment, with its values as
// defaults (the password is only read from the environment).
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Broker, "broker", c.Broker, "MQTT broker URL (MYMONIT_MQTT_BROKER)")
	fs.StringVar(&c.ClientID, "client-id", c.ClientID, "fixed MQTT client id of the persistent session (MYMONIT_MQTT_CLIENT_ID)")
	fs.StringVar(&c.Username, "username", c.Username, "user name for the broker (MYMONIT_MQTT_USERNAME)")
	fs.StringVar(&c.Rules, "rules", c.Rules, "mapping rules file, YAML or JSON (MYMONIT_MQTT_RULES)")
	fs.DurationVar(&c.KeepAlive, "keepalive", c.KeepAlive, "MQTT keep-alive (MYMONIT_MQTT_KEEPALIVE)")
	fs.DurationVar(&c.MaxReconnectInterval, "max-reconnect-interval", c.MaxReconnectInterval, "longest wait between reconnection attempts (MYMONIT_MQTT_MAX_RECONNECT_INTERVAL)")
	fs.IntVar(&c.MaxPayload, "max-payload-bytes", c.MaxPayload, "largest payload used (MYMONIT_MQTT_MAX_PAYLOAD_BYTES)")
	fs.IntVar(&c.MaxPending, "max-pending", c.MaxPending, "messages waiting for their confirms before reading pauses (MYMONIT_MQTT_MAX_PENDING)")
	fs.BoolVar(&c.AcceptRetained, "accept-retained", c.AcceptRetained, "use retained messages replayed on subscription (MYMONIT_MQTT_ACCEPT_RETAINED)")
}

// Check validates the configuration once flags were parsed (they bypass the
// tags' bounds); each error names the variable and its flag.
func (c Config) Check() error {
	var errs []error
	if u, err := url.Parse(c.Broker); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("MYMONIT_MQTT_BROKER (-broker) %q: want scheme://host:port, for example tcp://127.0.0.1:1883", c.Broker))
	} else {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			errs = append(errs, fmt.Errorf("MYMONIT_MQTT_BROKER (-broker) %q: scheme must be tcp, ssl, ws or wss", c.Broker))
		}
	}
	if c.ClientID == "" || len(c.ClientID) > 65535 {
		errs = append(errs, errors.New("MYMONIT_MQTT_CLIENT_ID (-client-id) is required: the broker keeps the persistent session under it"))
	}
	if c.Rules == "" {
		errs = append(errs, errors.New("MYMONIT_MQTT_RULES (-rules) is required: the file of rules mapping topics to measures"))
	}
	if c.KeepAlive < time.Second {
		errs = append(errs, fmt.Errorf("MYMONIT_MQTT_KEEPALIVE (-keepalive) %s is shorter than 1s", c.KeepAlive))
	}
	if c.MaxReconnectInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("MYMONIT_MQTT_MAX_RECONNECT_INTERVAL (-max-reconnect-interval) %s is shorter than 100ms", c.MaxReconnectInterval))
	}
	if c.MaxPayload < 16 || c.MaxPayload > 4<<20 {
		errs = append(errs, fmt.Errorf("MYMONIT_MQTT_MAX_PAYLOAD_BYTES (-max-payload-bytes) %d is not between 16 and 4194304", c.MaxPayload))
	}
	if c.MaxPending < 1 {
		errs = append(errs, fmt.Errorf("MYMONIT_MQTT_MAX_PENDING (-max-pending) %d is smaller than 1", c.MaxPending))
	}
	return errors.Join(errs...)
}

// LoadRules reads the rules file named by c.Rules (see ParseRules).
func LoadRules(c Config) (*Rules, error) {
	data, err := os.ReadFile(c.Rules)
	if err != nil {
		return nil, fmt.Errorf("MYMONIT_MQTT_RULES: %w", err)
	}
	rs, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Rules, err)
	}
	return rs, nil
}
