# annb_gzip(IN OUT): OUT is IN compressed by `gzip -9n` (no name or time in
# the header: the same bytes from every build). Done at configure time; IN
# becomes a configure dependency, so the build after a change to IN
# configures again and OUT follows.
find_program(ANNB_GZIP gzip REQUIRED)
function(annb_gzip in out)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${in})
  get_filename_component(dir ${out} DIRECTORY)
  file(MAKE_DIRECTORY ${dir})
  execute_process(COMMAND ${ANNB_GZIP} -9n -c ${in} OUTPUT_FILE ${out} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip -9n ${in}: ${rc}")
  endif()
endfunction()
