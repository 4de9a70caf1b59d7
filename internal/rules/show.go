package rules

import (
	"bytes"
	"encoding/json"
	"fmt"

	yamlv3 "go.yaml.in/yaml/v3"
)

// ShowEffective renders the effective policy (defaults merged) as YAML. With
// a source, a comment above every rule says where it comes from: the
// built-in defaults or the user's policy (`policy show`); without, the YAML
// is the policy alone, so that two sources of the same policy compare equal
// (`policy diff`).
func ShowEffective(p *Policy, source string) ([]byte, error) {
	js, err := json.Marshal(p.Effective())
	if err != nil {
		return nil, err
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	blockStyle(&doc)
	if source != "" && len(doc.Content) == 1 && doc.Content[0].Kind == yamlv3.MappingNode {
		root := doc.Content[0]
		root.HeadComment = fmt.Sprintf("Effective policy (source: %s; embedded defaults merged in).", source)
		for i := 0; i+1 < len(root.Content); i += 2 {
			section := root.Content[i].Value
			if section != "ingressClasses" && section != "controllers" && section != "classGuesses" {
				continue
			}
			rulesNode := root.Content[i+1]
			for j := 0; j+1 < len(rulesNode.Content); j += 2 {
				key := rulesNode.Content[j]
				key.HeadComment = "source: " + p.RuleSource(section+"/"+key.Value)
			}
		}
	}
	var out bytes.Buffer
	enc := yamlv3.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// blockStyle undoes the flow style and quoting that parsing JSON leaves on
// the nodes, so the output reads as ordinary YAML.
func blockStyle(n *yamlv3.Node) {
	n.Style = 0
	if n.Kind == yamlv3.ScalarNode && n.Tag == "!!str" {
		// Keep strings that would read as another type quoted.
		var probe any
		if err := yamlv3.Unmarshal([]byte(n.Value), &probe); err != nil || fmt.Sprint(probe) != n.Value {
			n.Style = yamlv3.DoubleQuotedStyle
		} else if _, isString := probe.(string); !isString {
			n.Style = yamlv3.DoubleQuotedStyle
		}
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}
