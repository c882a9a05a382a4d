# tap.awk: turn one validation program's TAP output into test records.
#
#   awk -v program=NAME -f tap.awk NAME.tap
#
# prints one tab-separated line per test: program, test key, result, where
# result is ok, not_ok or skip. The key is the test's description (the
# skip reason for a skipped test), followed by " [#k]" for its k-th
# repetition when a program prints the same description more than once, so
# that the same key names the same test in every runtime's output.
#
# Only lines at column 0 are the program's own TAP; indented lines are YAML
# diagnostics. A diagnostic block that follows no test line and holds a
# non-empty "error" (the hooks programs report failures that way, with a
# plan of 1..0) is printed as a record with result "diag".
function emit(key, result) {
	seen[key]++
	if (seen[key] > 1)
		key = key " [#" seen[key] "]"
	printf "%s\t%s\t%s\n", program, key, result
}
/^(not )?ok( |$)/ {
	result = ($0 ~ /^not ok/) ? "not_ok" : "ok"
	line = $0
	sub(/^(not )?ok */, "", line)
	sub(/^[0-9]+ */, "", line)
	if (tolower(line) ~ /^# *skip/) {
		result = (result == "ok") ? "skip" : result
		sub(/^# *[sS][kK][iI][pP] */, "", line)
	} else {
		sub(/^- */, "", line)
	}
	gsub(/\t/, " ", line)
	if (line == "")
		line = "(no description)"
	emit(line, result)
	after_test = 1
	next
}
/^  ---/ {
	in_yaml = 1
	orphan = !after_test
	yaml_error = 0
	next
}
in_yaml && /^  \.\.\./ {
	in_yaml = 0
	if (orphan && yaml_error)
		emit("diagnostic error outside any test", "diag")
	next
}
in_yaml {
	if ($0 ~ /"error": *"[^"]/)
		yaml_error = 1
	next
}
/^(TAP version|[0-9]+\.\.[0-9]+)/ {
	# a plan or the version line: the next YAML block is no longer the
	# diagnostic of a test. Other lines at column 0 (comments, "Refer to:
	# ..." lines that go on a test's description) leave it to the test.
	after_test = 0
}
