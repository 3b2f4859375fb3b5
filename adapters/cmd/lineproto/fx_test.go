package main

import (
	"testing"

	"go.uber.org/fx"

	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/adapters/lineproto"
	"github.com/mymonit/mymonit/adapters/sink"
)

func TestFxGraph(t *testing.T) {
	cfg := sink.Config{Sink: sink.DefaultSettings()}
	cfg.Log.Level = "info"
	err := fx.ValidateApp(command.App(cfg, "lineproto",
		fx.Supply(lineproto.Settings{HTTPAddr: "127.0.0.1:0", UDPPrecision: "ns", MaxBody: 1 << 20}),
		lineproto.Module,
		fx.Invoke(func(*lineproto.Server) {}),
	)...)
	if err != nil {
		t.Fatal(err)
	}
}
