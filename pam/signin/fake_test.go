package signin

import "errors"

// conv is a scripted conversation: it answers prompts from answers and
// records what it was asked and shown. Each Info is also sent on infos
// when it is set, so a test can act when the module asks for the card.
type conv struct {
	answers  [][]byte
	given    [][]byte // the buffers handed out, to check they were cleared
	prompts  []string
	shown    []string // "info: …" and "error: …"
	infos    chan<- string
	failWith error
	onEcho   func() // runs when an echo-on prompt is shown, before it is answered
}

func (c *conv) PromptSecret(prompt string) ([]byte, error) {
	c.prompts = append(c.prompts, prompt)
	if c.failWith != nil {
		return nil, c.failWith
	}
	if len(c.answers) == 0 {
		return nil, errors.New("no more answers")
	}
	a := c.answers[0]
	c.answers = c.answers[1:]
	c.given = append(c.given, a)
	return a, nil
}

// PromptEcho records the prompt and answers from answers like
// PromptSecret; the prompt shows as "prompt: …".
func (c *conv) PromptEcho(prompt string) ([]byte, error) {
	c.shown = append(c.shown, "prompt: "+prompt)
	if c.onEcho != nil {
		c.onEcho()
	}
	return c.PromptSecret(prompt)
}

func (c *conv) Info(msg string) error {
	c.shown = append(c.shown, "info: "+msg)
	if c.infos != nil {
		c.infos <- msg
	}
	return nil
}

func (c *conv) Error(msg string) error {
	c.shown = append(c.shown, "error: "+msg)
	return nil
}
