# vsfile.tcl -- random channel operations applied to a file channel and to
# an mmap channel on a copy of the same file, results compared after every
# step. Writes and seeks stay inside the file, so the mmap channel's fixed
# size never shows; both channels get the same options.
#
#   TCLLIBPATH=/work/wtA tclsh8.6 vsfile.tcl ?seed? ?runs? ?ops?
package require mmap

lassign $argv seed runs ops
if {$seed eq ""} {set seed [clock clicks]}
if {$runs eq ""} {set runs 200}
if {$ops eq ""} {set ops 200}
expr {srand($seed)}
puts "seed $seed"

proc rnd {n} {expr {int(rand() * $n)}}
proc pick {list} {lindex $list [rnd [llength $list]]}

set dir [file normalize vsfile.tmp]
file mkdir $dir

proc content {size} {
    set s ""
    set alphabet [list a b c \n \r \r\n x y \u00e9 \u4e4d \x00 \x1a " "]
    while {[string length $s] < $size} {append s [pick $alphabet]}
    string range $s 0 [expr {$size - 1}]
}

set failures 0
for {set run 0} {$run < $runs} {incr run} {
    set size [expr {1 + [rnd 3] * 4096 + [rnd 300]}]
    set bytes [encoding convertto utf-8 [content $size]]
    set bytes [string range $bytes 0 [expr {$size - 1}]]
    set size [string length $bytes]
    foreach which {a b} {
	set f [open $dir/$which w]
	fconfigure $f -translation binary
	puts -nonewline $f $bytes
	close $f
    }
    set fa [open $dir/a r+]
    set fb0 [open $dir/b r+]
    set fb [mmap -shared $fb0]
    close $fb0
    set opts [list -buffering [pick {full line none}] \
	-buffersize [pick {1 7 64 4096 100000}] \
	-translation [pick {auto binary lf crlf cr {auto crlf} {binary lf}}] \
	-encoding [pick {utf-8 binary iso8859-1 shiftjis unicode}] \
	-eofchar [pick {{} {} {} \x1a}] -blocking 1]
    fconfigure $fa {*}$opts
    fconfigure $fb {*}$opts
    set log [list "run $run size $size opts $opts"]
    for {set i 0} {$i < $ops} {incr i} {
	set op [pick {seek seek read read readall gets gets puts puts tell eof flush
	    pending reconf}]
	switch -- $op {
	    seek {
		set cmd [pick [list \
		    "seek \$f [rnd [expr {$size + 1}]]" \
		    "seek \$f -[rnd [expr {$size + 1}]] end" \
		    "seek \$f 0 current"]]
	    }
	    read {set cmd "read \$f [rnd 500]"}
	    readall {set cmd {read $f}}
	    gets {set cmd {list [gets $f line] $line}}
	    puts {
		set text [content [rnd 40]]
		# stay inside the file: the most bytes text can need
		set need [expr {4 * [string length $text] + 2}]
		set here [tell $fa]
		tell $fb
		# [tell] counts pending output; close may add an -eofchar
		if {$here + $need + 1 >= $size} {
		    set cmd {tell $f}
		} else {
		    set cmd "puts -nonewline \$f [list $text]"
		}
	    }
	    tell {set cmd {tell $f}}
	    eof {set cmd {eof $f}}
	    flush {set cmd {flush $f}}
	    pending {set cmd {list [chan pending input $f] [chan pending output $f]}}
	    reconf {
		set o [pick {-buffering -translation -encoding -eofchar}]
		set v [dict get {
		    -buffering {full line none}
		    -translation {auto binary lf crlf cr}
		    -encoding {utf-8 binary iso8859-1}
		    -eofchar {{} \x1a}
		} $o]
		set cmd "fconfigure \$f $o [list [pick $v]]"
	    }
	}
	set f $fa
	set ra [string map [list $fa CHAN] [list [catch $cmd r] $r]]
	set f $fb
	set rb [string map [list $fb CHAN] [list [catch $cmd r] $r]]
	lappend log "$i: $cmd -> [string range $ra 0 80]"
	incr count([lindex $cmd 0])
	if {$ra ne $rb} {
	    incr failures
	    puts "DIFFERENCE run $run op $i"
	    puts [join [lrange $log end-15 end] \n]
	    puts "file: [string range $ra 0 300]"
	    puts "mmap: [string range $rb 0 300]"
	    break
	}
    }
    catch {close $fa} ca
    catch {close $fb} cb
    set ca [string map [list $fa CHAN] $ca]
    set cb [string map [list $fb CHAN] $cb]
    if {$ca ne $cb} {puts "close differs: $ca / $cb"; incr failures}
    set da [open $dir/a rb]; set xa [read $da]; close $da
    set db [open $dir/b rb]; set xb [read $db]; close $db
    # a file channel that wrote past the end grew the file: not comparable
    if {$xa ne $xb && $ra eq $rb && [string length $xa] == $size} {
	incr failures
	puts "CONTENT DIFFERS run $run (size [string length $xa] / [string length $xb])"
	puts [join [lrange $log end-10 end] \n]
    }
}
file delete -force $dir
puts "ops [array get count]"
puts "failures $failures"
