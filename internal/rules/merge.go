package rules

import "maps"

// mergeDocuments returns over merged onto base, neither of which is
// modified: maps are merged by key, a key of over replacing the whole entry
// of base (a rule is never merged field by field, so a user rule means exactly
// what it says); scalars of over replace those of base when set; ccm is merged
// by mergeCCM.
func mergeDocuments(base, over *Document) *Document {
	out := &Document{
		APIVersion:               APIVersion,
		Kind:                     Kind,
		ReplaceDefaults:          over.ReplaceDefaults,
		IngressClasses:           mergeMap(base.IngressClasses, over.IngressClasses),
		Controllers:              mergeMap(base.Controllers, over.Controllers),
		ClassGuesses:             mergeMap(base.ClassGuesses, over.ClassGuesses),
		DefaultIngressClass:      base.DefaultIngressClass,
		OnUnknownClass:           base.OnUnknownClass,
		OnConflict:               base.OnConflict,
		RemoveForeignAnnotations: base.RemoveForeignAnnotations,
		CCM:                      mergeCCM(base.CCM, over.CCM),
	}
	if over.DefaultIngressClass != "" {
		out.DefaultIngressClass = over.DefaultIngressClass
	}
	if over.OnUnknownClass != "" {
		out.OnUnknownClass = over.OnUnknownClass
	}
	if over.OnConflict != "" {
		out.OnConflict = over.OnConflict
	}
	if over.RemoveForeignAnnotations != nil {
		out.RemoveForeignAnnotations = over.RemoveForeignAnnotations
	}
	return out
}

// mergeMap returns a new map with the entries of base and then over.
func mergeMap[V any](base, over map[string]V) map[string]V {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := make(map[string]V, len(base)+len(over))
	maps.Copy(out, base)
	maps.Copy(out, over)
	return out
}
