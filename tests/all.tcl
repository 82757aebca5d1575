# tests/all.tcl -- run every tests/*.test in its own child tclsh and add up.
#
# Usage: tclsh tests/all.tcl ?-tclsh PATH? ?-timeout SECONDS? ?tcltest options?
#   tcltest options (-file, -notfile, -match, -skip, -verbose, -constraints,
#   ...) are parsed with tcltest::configure: -file/-notfile choose the test
#   files here, all options set are passed on to each child.
#   -tclsh PATH runs the children with PATH instead of this tclsh.
#   -timeout SECONDS kills a test file still running after that long
#   (default 900, 0 = no limit), so a hung test cannot hang CI.
#
# Why not tcltest::runAllTests: it does not count a test file that errors,
# exits early or crashes as a failure, and its totals are awkward to read by
# a program.  Here such a file counts as 1 failed test and is named, and the
# very last line of output is always "N passed, N failed, N skipped".
# Exit status is 1 when anything failed (or no test file matched), else 0.

package require Tcl 8.6-
package require tcltest 2.5

# We parse the command line ourselves: keep tcltest's auto-configuration
# (which reads ::argv) from seeing our own -tclsh and -timeout options.
set cmdline $argv
set argv {}
set shell [info nameofexecutable]
set timeout 900
foreach {opt var} {-tclsh shell -timeout timeout} {
    if {[set i [lsearch -exact $cmdline $opt]] >= 0} {
        set $var [lindex $cmdline $i+1]
        set cmdline [lreplace $cmdline $i $i+1]
    }
}
if {![string is entier -strict $timeout] || $timeout < 0} {
    puts stderr "all.tcl: -timeout wants a number of seconds (0: no limit), not \"$timeout\""
    exit 2
}

# Remember tcltest's defaults, so only options actually set reach the children.
foreach opt [tcltest::configure] {
    set default($opt) [tcltest::configure $opt]
}
if {[catch {
    tcltest::configure -testdir [file dirname [file normalize [info script]]] {*}$cmdline
} msg]} {
    puts stderr "all.tcl: $msg"
    exit 2
}
set out [tcltest::outputChannel]
set childArgs {}
foreach opt [tcltest::configure] {
    # -outfile stays with us: the children's totals must come back through the pipe.
    if {$opt in {-outfile -singleproc}} continue
    set value [tcltest::configure $opt]
    if {$value ne $default($opt)} {
        lappend childArgs $opt $value
    }
}

# Test files: those matching a -file pattern and no -notfile pattern.
set testdir [tcltest::testsDirectory]
set files {}
foreach pattern [tcltest::matchFiles] {
    lappend files {*}[glob -nocomplain -types f -directory $testdir -- $pattern]
}
set skipped {}
foreach pattern [tcltest::skipFiles] {
    lappend skipped {*}[glob -nocomplain -types f -directory $testdir -- $pattern]
}
set files [lsort -unique [lmap f $files {if {$f in $skipped} continue; set f}]]

puts $out "Tests run with:  $shell (time limit per file: [expr {$timeout ? "$timeout s" : "none"}])"
puts $out "Tests located in:  $testdir"
if {[info exists env(TCLLIBPATH)]} {
    puts $out "TCLLIBPATH:  $env(TCLLIBPATH)"
}
if {[llength $childArgs]} {
    puts $out "Options:  $childArgs"
}

array set sum {Total 0 Passed 0 Skipped 0 Failed 0}
set failedFiles {}  ;# files with failed tests
set brokenFiles {}  ;# files that did not finish properly, with the reason

# Echo a child's output as it arrives and catch its totals line; the event
# loop lets a timer stop a file that hangs (even if its own children keep
# the pipe open).
proc readChild {chan} {
    global out totals done
    while {[gets $chan line] >= 0} {
        puts $out $line
        # cleanupTests prints "<file>:\tTotal\tN\tPassed\tN\tSkipped\tN\tFailed\tN"
        if {[regexp {^[^:\t]+:\tTotal\t(\d+)\tPassed\t(\d+)\tSkipped\t(\d+)\tFailed\t(\d+)} \
                $line -> t p s f]} {
            set totals [list Total $t Passed $p Skipped $s Failed $f]
        }
    }
    if {[eof $chan]} {
        set done eof
    }
}

foreach file $files {
    set name [file tail $file]
    puts $out "==== $name"
    flush $out
    set totals {}
    set done {}
    set chan [open |[list $shell $file {*}$childArgs 2>@1] r]
    fconfigure $chan -blocking 0
    fileevent $chan readable [list readChild $chan]
    if {$timeout > 0} {
        set timer [after [expr {$timeout * 1000}] {set done timeout}]
    }
    vwait done
    if {$timeout > 0} {
        after cancel $timer
    }
    flush $out
    set problem {}
    if {$done eq "timeout"} {
        # The shell's built-in kill: a minimal system has no /bin/kill.
        catch {exec /bin/sh -c {kill -s KILL "$@"} sh {*}[pid $chan]}
        set totals {}
    }
    fconfigure $chan -blocking 1
    if {$done eq "timeout"} {
        catch {close $chan}
        set problem "did not finish within $timeout seconds and was killed"
    } elseif {[catch {close $chan} msg opts]} {
        set code [dict get $opts -errorcode]
        switch -- [lindex $code 0] {
            CHILDSTATUS {set problem "exited with status [lindex $code 2]"}
            CHILDKILLED {set problem "killed by signal [lindex $code 2]"}
            default     {set problem "failed: $msg"}
        }
    }
    if {$totals eq {} && $problem eq {}} {
        set problem "printed no totals line (no cleanupTests?)"
    }
    foreach {key n} $totals {
        incr sum($key) $n
    }
    if {$totals ne {} && [dict get $totals Failed] > 0} {
        lappend failedFiles $name
    }
    if {$problem ne {}} {
        # The file as a whole is one more failed test.
        incr sum(Total)
        incr sum(Failed)
        lappend brokenFiles $name $problem
        puts $out "==== $name $problem: counted as 1 failed test"
    }
}

puts $out ""
puts $out "all.tcl:\tTotal\t$sum(Total)\tPassed\t$sum(Passed)\tSkipped\t$sum(Skipped)\tFailed\t$sum(Failed)"
puts $out "Ran [llength $files] test file(s)."
if {[llength $failedFiles]} {
    puts $out "Files with failing tests: [join $failedFiles]"
}
if {[llength $brokenFiles]} {
    puts $out "Test files that did not finish properly (rerun one with\
        -file NAME -verbose start to see where it stopped):"
    foreach {name problem} $brokenFiles {
        puts $out "  $name: $problem"
    }
}
set status [expr {$sum(Failed) > 0}]
if {![llength $files]} {
    puts $out "No test files matched [tcltest::matchFiles] in $testdir"
    set status 1
}
puts $out "$sum(Passed) passed, $sum(Failed) failed, $sum(Skipped) skipped"
flush $out
exit $status
