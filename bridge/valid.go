package bridge

// ValidChannelName reports whether Channels accepts name as a channel name.
func ValidChannelName(name string) bool { return validateChannelName(name) == nil }

// ValidGroupName reports whether Channels accepts name as a group name.
func ValidGroupName(name string) bool { return validateGroupName(name) == nil }
