package policy

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// HCL's parser and evaluator recurse once per nesting level and per
// operator, and a goroutine that exceeds its stack limit kills the whole
// process instead of panicking. A policy never needs more than a block
// holding a list, nor any operator, so the lexer's tokens are checked
// against generous limits before the parser sees them.
const (
	maxNesting   = 32
	maxOperators = 64
)

// checkLimits returns an error diagnostic at the first token that exceeds
// a limit, or nil.
func checkLimits(src []byte, filename string) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth, ops := 0, 0
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
			if depth > maxNesting {
				return limitDiag(tok.Range, "Nesting too deep",
					fmt.Sprintf("brackets, braces and templates nest more than %d levels deep here; a policy needs three.", maxNesting))
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			depth = max(depth-1, 0)
		}
		switch tok.Type {
		case hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar,
			hclsyntax.TokenSlash, hclsyntax.TokenPercent, hclsyntax.TokenEqualOp,
			hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq,
			hclsyntax.TokenAnd, hclsyntax.TokenOr, hclsyntax.TokenBang,
			hclsyntax.TokenQuestion, hclsyntax.TokenTemplateControl:
			ops++
			if ops > maxOperators {
				return limitDiag(tok.Range, "Too many operators",
					fmt.Sprintf("the file uses more than %d operators or template directives; a policy is plain values and needs none.", maxOperators))
			}
		}
	}
	return nil
}

func limitDiag(rng hcl.Range, summary, detail string) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  rng.Ptr(),
	}}
}
