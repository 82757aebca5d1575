# tcllib_logger.tcl --
#
#	Send an application's tcllib logger output into an mmap::log.
#
#	An application that already logs with tcllib's logger package
#	(logger::init, ${log}::info, ${log}::warn, ...) keeps its logging
#	calls; one line of setup, [logToMmap $service $mlog], makes every
#	level of that service append to the log file instead of printing.
#	Each record holds "level service: text". Several processes may do
#	this with one log file at once; `mmaplog -f` follows it.
#
#	The demo logs three messages, reads them back and checks them.
#	Exits 0 on success, 1 on failure, and skips itself (exit 0) when
#	tcllib is not installed (Debian: tcllib). Cleans up its temporary
#	directory.

package require mmap
if {[catch {package require logger}]} {
    puts "tcllib_logger: skipped: tcllib's logger package is not installed"
    exit 0
}

# logToMmap service mlog --
#	Route every level of the tcllib logger service (the value
#	logger::init returned) to the log object mlog (the value
#	mmap::log open returned).
proc logToMmap {service mlog} {
    set name [${service}::servicename]
    foreach level [logger::levels] {
	${service}::logproc $level text \
	    "[list $mlog append] \"[list $level] [list $name]: \$text\""
    }
}

set dir [file join /tmp mmap-demo-[pid]]
file mkdir $dir
set path [file join $dir app.mlog]

proc fail {msg} {
    global dir
    puts stderr "tcllib_logger: FAILED: $msg"
    file delete -force $dir
    exit 1
}

set mlog [mmap::log open $path -size 65536]
set log [logger::init myapp]
logToMmap $log $mlog

${log}::info "service started"
${log}::warn {disk 91% full}
${log}::debug "a message with \"quotes\" and \[brackets\]"

set got {}
foreach {seq time message} [$mlog read] {
    puts "#$seq $message"
    lappend got $message
}
set want [list {info myapp: service started} {warn myapp: disk 91% full} \
	      {debug myapp: a message with "quotes" and [brackets]}]
if {$got ne $want} {
    fail "read back [list $got], expected [list $want]"
}
$mlog close
file delete -force $dir
puts "tcllib_logger: OK"
