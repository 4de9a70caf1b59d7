package rules

import (
	networkingv1 "k8s.io/api/networking/v1"
)

// IsDefaultClassAnnotation marks the cluster's default IngressClass.
const IsDefaultClassAnnotation = networkingv1.AnnotationIsDefaultIngressClass

// IngressClassOf extracts what resolution needs from an IngressClass object.
func IngressClassOf(ic *networkingv1.IngressClass) IngressClass {
	return IngressClass{
		Name:       ic.Name,
		Controller: ic.Spec.Controller,
		IsDefault:  ic.Annotations[IsDefaultClassAnnotation] == "true",
	}
}

// StaticClasses is a fixed set of IngressClasses: the objects found in the
// input of the offline command, or a test's fixtures.
type StaticClasses struct {
	byName      map[string]IngressClass
	defaultName string
}

// NewStaticClasses indexes classes by name. Of several defaults, the
// lexically smallest name wins, so that the answer is deterministic.
func NewStaticClasses(classes ...IngressClass) *StaticClasses {
	s := &StaticClasses{byName: make(map[string]IngressClass, len(classes))}
	for _, c := range classes {
		s.byName[c.Name] = c
		if c.IsDefault && (s.defaultName == "" || c.Name < s.defaultName) {
			s.defaultName = c.Name
		}
	}
	return s
}

// IngressClass implements IngressClasses.
func (s *StaticClasses) IngressClass(name string) (IngressClass, bool) {
	c, ok := s.byName[name]
	return c, ok
}

// DefaultIngressClass implements IngressClasses.
func (s *StaticClasses) DefaultIngressClass() (IngressClass, bool) {
	if s.defaultName == "" {
		return IngressClass{}, false
	}
	return s.byName[s.defaultName], true
}
