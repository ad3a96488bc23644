package deviceplugin_test

import "testing"

type tlog struct{ t *testing.T }

func (l tlog) Debugf(f string, a ...any) { l.t.Logf("debug: "+f, a...) }
func (l tlog) Infof(f string, a ...any)  { l.t.Logf("info: "+f, a...) }
func (l tlog) Warnf(f string, a ...any)  { l.t.Logf("warn: "+f, a...) }
