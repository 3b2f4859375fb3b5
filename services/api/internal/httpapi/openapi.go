package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// specYAML is the OpenAPI 3 description of the API.
//
//go:embed openapi.yaml
var specYAML []byte

// Spec returns the OpenAPI document, validated.
func Spec() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(specYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return doc, nil
}

// specJSON is the document served at /v1/openapi.json.
func specJSON() ([]byte, error) {
	doc, err := Spec()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	return b, nil
}
