package main

import (
	"testing"

	"go.uber.org/fx"

	"github.com/mymonit/mymonit/adapters/httppush"
	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/adapters/sink"
)

func TestFxGraph(t *testing.T) {
	cfg := sink.Config{Sink: sink.DefaultSettings()}
	cfg.Log.Level = "info"
	err := fx.ValidateApp(command.App(cfg, "httppush",
		fx.Supply(httppush.Settings{HTTPAddr: "127.0.0.1:0", KeysFile: "unused.json"}),
		httppush.Module,
		fx.Invoke(func(*httppush.Server) {}),
	)...)
	if err != nil {
		t.Fatal(err)
	}
}
