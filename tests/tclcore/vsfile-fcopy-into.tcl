# vsfile-fcopy-into.tcl ?seed? -- random fcopy (translations, encodings,
# buffer sizes, -size, start positions) from a plain file into a file
# channel and into an mmap channel on copies of one file: results,
# positions and the files must be the same (runs in which the file channel
# grew its file are not compared).
package require mmap
expr {srand([lindex $argv 0])}
proc rnd {n} {expr {int(rand()*$n)}}
proc pick {l} {lindex $l [rnd [llength $l]]}
set dir [file normalize fcopy.tmp]; file mkdir $dir
set fails 0; set compared 0
for {set run 0} {$run < 300} {incr run} {
  set size [expr {1000+[rnd 20000]}]
  set s ""; while {[string length $s] < 3000} {append s [pick {a b \n \r\n \xe9 \u4e4d \0 xyz}]}
  set src [encoding convertto utf-8 $s]
  set f [open $dir/src wb]; puts -nonewline $f $src; close $f
  foreach w {sink.file sink.mmap} {set f [open $dir/$w wb]; puts -nonewline $f [string repeat . $size]; close $f}
  set iopts [list -translation [pick {auto binary crlf lf}] -encoding [pick {utf-8 binary iso8859-1}]]
  set opts [list -translation [pick {binary crlf lf cr}] -encoding [pick {utf-8 binary iso8859-1 unicode}] -buffersize [pick {1 10 4096 65536}] -buffering [pick {full line none}]]
  set start [rnd [expr {$size/4}]]
  set n [pick {-1 0 1 100 5000}]
  set res {}
  foreach kind {file mmap} {
    set in [open $dir/src r]; fconfigure $in {*}$iopts
    set f [open $dir/sink.$kind r+]
    if {$kind eq "mmap"} {set m [mmap -shared $f]; close $f; set f $m}
    fconfigure $f {*}$opts
    seek $f $start
    set r [catch {if {$n < 0} {fcopy $in $f} else {fcopy $in $f -size $n}} msg]
    lappend res [list $r [string map [list $f CH $in IN] $msg] [tell $f] [tell $in]]
    close $f; close $in
  }
  if {[file size $dir/sink.file] != $size} continue
  incr compared
  set ra [open $dir/sink.file rb]; set rb [open $dir/sink.mmap rb]
  set same [expr {[read $ra] eq [read $rb]}]; close $ra; close $rb
  if {[lindex $res 0] ne [lindex $res 1] || !$same} {incr fails; puts "run $run sink diff: $res same=$same opts $opts iopts $iopts start $start n $n"}
}
file delete -force $dir
puts "compared $compared fails $fails"
